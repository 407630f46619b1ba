"""Every other button of the Buckets panel, clicked in a real browser through the hub: new folder, drag-and-drop
upload (a File dropped on the panel, with its progress bar), copy the s3:// path (read back from the system
clipboard), "Load more" on a bucket larger than one page, and delete with its confirmation (Cancel keeps the
object, Delete removes it; a folder goes with everything in it). Each result is checked in the object store
with alice's own keys, not only on the screen."""

import pytest

from tests.browser.test_bucket_panel import login_and_open_lab

BUCKET = "alice-actions"
PANEL = "#odh-bucket-browser"
MANY = 230  # more than one page (the panel's pageSize is 200)


@pytest.fixture(scope="module")
def alice_bucket(user_server):
    server = user_server("alice")
    client = server.client()
    if BUCKET not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket(BUCKET)
    for i in range(MANY):
        client.put_small(BUCKET, f"many/obj-{i:04d}.txt", f"{i}\n".encode())
    client.put_small(BUCKET, "keep.txt", b"keep\n")
    return server


def _keys(server, prefix=""):
    return {o["key"] for o in server.client().iter_objects(BUCKET, prefix=prefix)}


def _open(page, hub, *names):
    page.context.set_default_timeout(60_000)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    page.locator(f'{PANEL} .odh-row[data-bucket="{BUCKET}"]').wait_for()
    page.click(f'{PANEL} .odh-row[data-bucket="{BUCKET}"] .odh-row-name')
    for prefix in names:
        page.click(f'{PANEL} .odh-row[data-prefix="{prefix}"] .odh-row-name')


def test_new_folder_drop_upload_copy_path(hub, alice_bucket, page, shot):
    _open(page, hub)
    page.locator(f'{PANEL} .odh-row[data-key="keep.txt"]').wait_for()

    # New folder: asks for its name, then it is listed (an empty folder is a zero-byte marker object)
    page.click("#odh-new-folder-button")
    page.locator(".jp-Dialog input").fill("reports")
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator(f'{PANEL} .odh-row[data-prefix="reports/"]').wait_for()
    assert "reports/" in [f["prefix"] for f in alice_bucket.client().list_page(BUCKET).folders]

    # drag and drop a file onto the open folder: a progress bar per file, then the object is there
    page.click(f'{PANEL} .odh-row[data-prefix="reports/"] .odh-row-name')
    size = 24 * 2**20
    page.evaluate("""([selector, size]) => {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i += 4096) bytes[i] = i % 251;
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.bin', { type: 'application/octet-stream' }));
        const node = document.querySelector(selector);
        for (const type of ['dragenter', 'dragover', 'drop']) {
            node.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }
    }""", [PANEL, size])
    progress = page.locator(f'{PANEL} .odh-upload-progress[data-key="reports/dropped.bin"]')
    progress.wait_for()
    assert progress.locator("progress").get_attribute("max") == str(size)
    page.locator(f'{PANEL} .odh-upload-progress[data-key="reports/dropped.bin"][data-state="done"]').wait_for(
        timeout=120_000)
    page.locator(f'{PANEL} .odh-row[data-key="reports/dropped.bin"]').wait_for()
    data = alice_bucket.client().get_bytes(BUCKET, "reports/dropped.bin")
    assert len(data) == size and data[4096] == 4096 % 251
    shot(page, "13-dropped-upload")

    # copy the s3:// path: the status line says so and the system clipboard holds it
    row = f'{PANEL} .odh-row[data-key="reports/dropped.bin"]'
    page.hover(row)
    page.click(f'{row} [data-action="copy"]')
    page.locator(f"{PANEL} :text('Copied s3://{BUCKET}/reports/dropped.bin')").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == f"s3://{BUCKET}/reports/dropped.bin"
    assert not [e for e in page.js_errors if "403" not in e], page.js_errors


def test_load_more_and_delete_with_confirmation(hub, alice_bucket, page):
    _open(page, hub, "many/")
    rows = page.locator(f'{PANEL} .odh-row[data-key^="many/"]')
    page.locator(f'{PANEL} .odh-row[data-key="many/obj-0199.txt"]').wait_for()
    assert rows.count() == 200 and page.locator("#odh-load-more").is_visible()
    page.click("#odh-load-more")
    page.locator(f'{PANEL} .odh-row[data-key="many/obj-{MANY - 1:04d}.txt"]').wait_for()
    assert rows.count() == MANY
    page.locator("#odh-load-more").wait_for(state="hidden")

    # delete one object: Cancel keeps it, Delete removes it (from the list and from the bucket)
    row = f'{PANEL} .odh-row[data-key="many/obj-0007.txt"]'
    page.hover(row)
    page.click(f'{row} [data-action="delete"]')
    dialog = page.locator(".jp-Dialog")
    assert f"Delete s3://{BUCKET}/many/obj-0007.txt?" in dialog.inner_text()
    page.click(".jp-Dialog .jp-mod-reject")
    dialog.wait_for(state="detached")
    assert "many/obj-0007.txt" in _keys(alice_bucket, "many/")
    page.hover(row)
    page.click(f'{row} [data-action="delete"]')
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator(row).wait_for(state="detached")
    assert "many/obj-0007.txt" not in _keys(alice_bucket, "many/") and len(_keys(alice_bucket, "many/")) == MANY - 1

    # delete a folder: everything under it goes, the rest of the bucket stays
    page.click("#odh-up-button")
    folder = f'{PANEL} .odh-row[data-prefix="many/"]'
    page.locator(folder).wait_for()
    page.hover(folder)
    page.click(f'{folder} [data-action="delete"]')
    assert "and everything in it" in page.locator(".jp-Dialog").inner_text()
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator(folder).wait_for(state="detached")
    page.locator(f"{PANEL} :text('Deleted {MANY - 1} objects')").wait_for()
    assert _keys(alice_bucket, "many/") == set() and "keep.txt" in _keys(alice_bucket)
    assert not [e for e in page.js_errors if "403" not in e], page.js_errors
