"""The JupyterLab bucket browser in a real browser, through the hub: list, upload with a progress bar,
download, insert a snippet into a notebook and run it."""

import os

import pytest


BUCKET = "alice-browser"


@pytest.fixture(scope="module")
def alice_lab(user_server):
    server = user_server("alice")
    client = server.client()
    if BUCKET not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket(BUCKET)
    client.put_small(BUCKET, "data/sample.csv", b"x,y\n1,2\n3,4\n")
    return server


def login_and_open_lab(page, hub, name, password):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state()
    page.goto(f"{hub.url}/user/{name}/lab?reset")  # a fresh layout: earlier tests' tabs and dialogs are not restored
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=90_000)
    news = page.locator(".jp-Notification-Toast-Close, .Toastify__close-button")
    if news.count():
        news.first.click()  # JupyterLab's "news?" toast covers part of the screenshots
    if not page.locator("#odh-bucket-browser").is_visible():
        page.click('.lm-TabBar-tab[data-id="odh-bucket-browser"]')  # the sidebar tab, as a user would
    page.locator("#odh-bucket-browser").wait_for(state="visible")


def test_bucket_panel_journey(hub, alice_lab, page, shot, tmp_path):
    page.context.set_default_timeout(60_000)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    panel = "#odh-bucket-browser"
    page.locator(f'{panel} .odh-row[data-bucket="{BUCKET}"]').wait_for()
    page.click(f'{panel} .odh-row[data-bucket="{BUCKET}"] .odh-row-name')
    page.click(f'{panel} .odh-row[data-prefix="data/"] .odh-row-name')
    page.locator(f'{panel} .odh-row[data-key="data/sample.csv"]').wait_for()
    shot(page, "10-bucket-panel")

    # upload by the toolbar button: multipart with a visible progress bar
    big = tmp_path / "measurements.bin"
    big.write_bytes(os.urandom(48 * 2**20))
    with page.expect_file_chooser() as chooser:
        page.click("#odh-upload-button")
    chooser.value.set_files(str(big))
    progress = page.locator(f'{panel} .odh-upload-progress[data-key="data/measurements.bin"] progress')
    progress.wait_for(state="visible")
    try:  # catch it part-way for the screenshot (parts of 8 MiB)
        page.wait_for_function("() => { const p = document.querySelector('.odh-upload-progress progress');"
                               " return p && p.value > 0 && p.value < p.max; }", timeout=20_000, polling=50)
    except Exception:
        pass
    shot(page, "11-upload-progress")
    page.locator(f'{panel} .odh-upload-progress[data-state="done"]').wait_for(timeout=120_000)
    page.locator(f'{panel} .odh-row[data-key="data/measurements.bin"]').wait_for()
    assert alice_lab.client().get_bytes(BUCKET, "data/measurements.bin") == big.read_bytes()

    # download streams the object through the browser
    with page.expect_download() as download:
        page.hover(f'{panel} .odh-row[data-key="data/sample.csv"]')
        page.click(f'{panel} .odh-row[data-key="data/sample.csv"] [data-action="download"]')
    assert download.value.suggested_filename == "sample.csv"
    with open(download.value.path(), "rb") as f:
        assert f.read() == b"x,y\n1,2\n3,4\n"

    # insert a boto3 snippet into a new notebook, run it with the user's own credentials
    page.click('.jp-LauncherCard[data-category="Notebook"]')
    page.locator(".jp-NotebookPanel .jp-Notebook").wait_for()
    page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=90_000)
    page.hover(f'{panel} .odh-row[data-key="data/sample.csv"]')
    page.click(f'{panel} .odh-row[data-key="data/sample.csv"] [data-action="snippet"]')
    page.locator(".jp-Dialog select").wait_for()
    page.select_option(".jp-Dialog select", label="boto3")
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator(".jp-Dialog").wait_for(state="detached")
    cell = page.locator(".jp-NotebookPanel .jp-Cell", has_text="S3_ENDPOINT_URL").first
    cell.wait_for()
    source = cell.locator(".jp-InputArea-editor").text_content()
    assert "data/sample.csv" in source and "alice-browser" in source, source
    output = cell.locator(".jp-OutputArea-output")
    # the inserted cell is the active one (snippets.insertCodeCell): wait for that state rather than click its
    # prompt, which JupyterLab re-renders (a click on it can keep finding it detached from the DOM)
    active = page.locator(".jp-NotebookPanel .jp-Cell.jp-mod-active", has_text="S3_ENDPOINT_URL")
    try:
        for attempt in range(3):  # a run sent while the new kernel is still connecting can be dropped
            if not active.count():  # a retry: the run moved on to the next cell; make the snippet active again
                cell.locator(".jp-InputArea-editor").click(timeout=15_000)
            active.wait_for(timeout=15_000)
            page.click('.jp-NotebookPanel-toolbar [data-command="notebook:run-cell-and-select-next"]')
            try:
                output.first.wait_for(timeout=30_000)
                break
            except Exception:
                if attempt == 2:
                    raise
    finally:
        shot(page, "12-snippet-ran")
    assert output.first.inner_text().strip() == "12", output.first.inner_text()  # len() of the 12-byte CSV
    shot(page, "12-snippet-ran")
    assert page.js_errors == [], page.js_errors
