/**
 * Sizes written for people, the one way the whole of odh-hub writes them (the same as
 * odh_spawner.quantities.format_bytes on the Python side): IEC binary units with a space, at most one
 * decimal, no trailing '.0' — '512 B', '2 KiB', '1.5 GiB'. Rounding carries into the next unit
 * (1048575 → '1 MiB').
 */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) {
    return '';
  }
  const sign = n < 0 ? '-' : '';
  let value = Math.abs(n);
  for (let i = 0; i < UNITS.length - 1; i++) {
    const rounded = i === 0 ? Math.round(value) : Math.round(value * 10) / 10;
    if (rounded < 1024) {
      return `${sign}${i === 0 ? rounded : rounded.toFixed(1).replace(/\.0$/, '')} ${UNITS[i]}`;
    }
    value /= 1024;
  }
  return `${sign}${(Math.round(value * 10) / 10).toFixed(1).replace(/\.0$/, '')} ${UNITS[UNITS.length - 1]}`;
}
