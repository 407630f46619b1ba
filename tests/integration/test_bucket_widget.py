"""The ipywidgets BucketBrowser against a real server and RGW (headless widgets, real API calls)."""

from server_extension.widgets import BucketBrowser


def test_widget_browses_uploads_downloads_and_deletes(user_server, tmp_path):
    client = user_server("bob").client()
    if "bob-widget" not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket("bob-widget")
    for i in range(7):
        client.put_small("bob-widget", f"runs/run-{i}.json", b"{}")
    ui = BucketBrowser(client, page_size=3)
    assert "🪣 bob-widget" in ui.listing.options
    ui.open_entry("🪣 bob-widget")
    assert ui.location.value == "<b>s3://bob-widget/</b>" and list(ui.listing.options) == ["📁 runs/"]
    ui.open_entry("📁 runs/")
    assert len(ui.listing.options) == 3 and not ui.buttons["more"].disabled
    ui.load_more()
    ui.load_more()
    assert len(ui.listing.options) == 7 and ui.buttons["more"].disabled  # paged, one call per page

    ui.upload_bytes("notes.txt", b"hello widget")
    ui.refresh()
    label = next(o for o in ui.listing.options if o.startswith("notes.txt"))
    ui.listing.value = label
    assert ui.path.value == "s3://bob-widget/runs/notes.txt"  # copy path follows the selection
    assert "Key='runs/notes.txt'" in ui.make_snippet()
    path = ui.download(str(tmp_path))
    assert open(path, "rb").read() == b"hello widget" and ui.progress.value == 100

    assert ui.delete() == 0 and "confirm" in ui.status.value  # not without confirmation
    ui.confirm.value = True
    assert ui.delete() == 1
    assert not any(o.startswith("notes.txt") for o in ui.listing.options)
    ui.up()
    ui.up()
    assert ui.bucket is None


def test_widget_shows_api_errors(user_server):
    ui = BucketBrowser(user_server("bob").client())
    ui.bucket = "no-such-bucket-anywhere"
    ui.refresh()
    assert "Error 404: No such bucket." in ui.status.value
