import { LabIcon } from '@jupyterlab/ui-components';

const bucketSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2C7.03 2 3 3.57 3 5.5v.2l1.9 14.2C5.14 21.67 8.2 23 12 23s6.86-1.33 7.1-3.1L21 5.7v-.2C21 3.57 16.97 2 12 2zm0 2c3.87 0 6.5 1.03 6.94 1.5C18.5 5.97 15.87 7 12 7S5.5 5.97 5.06 5.5C5.5 5.03 8.13 4 12 4zm5.13 15.6c-.2.63-2.27 1.4-5.13 1.4s-4.93-.77-5.13-1.4L5.3 7.8C6.95 8.55 9.35 9 12 9s5.05-.45 6.7-1.2l-1.57 11.8z"/>
  </g>
</svg>`;

/** The bucket browser's icon (sidebar tab, bucket rows, settings). */
export const bucketIcon = new LabIcon({
  name: '@odh-hub/labextension:bucket',
  svgstr: bucketSvg
});

const deploymentsSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2.5c-2.9 1.7-4.8 4.9-4.8 8.6 0 1.1.2 2.1.5 3.1L5 16.9l1.6 3.6 3.1-1.8h4.6l3.1 1.8 1.6-3.6-2.7-2.7c.3-1 .5-2 .5-3.1 0-3.7-1.9-6.9-4.8-8.6zm0 5.5a2 2 0 1 1 0 4 2 2 0 0 1 0-4zM10.5 20h3l-1.5 2.5z"/>
  </g>
</svg>`;

/** The Deployments panel's icon (sidebar tab, deploy command, progress tabs). */
export const deploymentsIcon = new LabIcon({
  name: '@odh-hub/labextension:deployments',
  svgstr: deploymentsSvg
});

const sparkSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 1.5l2.2 6.6 6.9-.9-5.3 4.5 3.2 6.2-6.4-3.1L12 22.5l-.6-7.7-6.4 3.1 3.2-6.2-5.3-4.5 6.9.9z"/>
  </g>
</svg>`;

/** The Spark cluster's icon (status bar item, Spark panel). */
export const sparkIcon = new LabIcon({
  name: '@odh-hub/labextension:spark',
  svgstr: sparkSvg
});

const ingestSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 4h12v2H3zm0 4h9v2H3zm0 4h6v2H3zm14-7v9.2l-2.6-2.6L13 13l5 5 5-5-1.4-1.4-2.6 2.6V5zM4 18h12v2H4z"/>
  </g>
</svg>`;

/** The Ingestions panel's icon (sidebar tab, commands, object views). */
export const ingestIcon = new LabIcon({
  name: '@odh-hub/labextension:ingest',
  svgstr: ingestSvg
});

const usageSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 21h18v-2H3v2zm2-4h3V9H5v8zm5.5 0h3V4h-3v13zM16 17h3v-6h-3v6z"/>
  </g>
</svg>`;

/** The Usage panel's icon (sidebar tab). */
export const usageIcon = new LabIcon({
  name: '@odh-hub/labextension:usage',
  svgstr: usageSvg
});
