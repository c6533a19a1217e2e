"""The HTML report opens in headless Chromium: every plot drawn, no console error, a screenshot kept.

Chromium (Debian's `chromium` package; `.ci/run` installs it when missing) is driven over
the DevTools protocol (aiohttp's websocket client): the page's console and log errors
are collected while it loads, each inline SVG's size and element count are read, and a
screenshot is written to the test's tmp folder (its path is printed).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from ab_stream import evaluate

from ops.evaluation.report import load_report
from ops.evaluation.report_html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
MEASURE = """JSON.stringify(Array.from(document.querySelectorAll('svg.plot')).map(s => {
  const r = s.getBoundingClientRect();
  return {w: r.width, h: r.height, shapes: s.querySelectorAll('polyline,polygon,circle,rect,line').length};
}))"""


async def _inspect(ws_url: str, page: Path, screenshot: Path) -> tuple[list, list[str]]:
    errors: list[str] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
        ids = iter(range(1, 1_000_000))
        pending: dict[int, asyncio.Future] = {}

        async def reader() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if "id" in data and data["id"] in pending:
                    pending.pop(data["id"]).set_result(data.get("result", data.get("error")))
                elif data.get("method") == "Runtime.exceptionThrown":
                    errors.append(json.dumps(data["params"]["exceptionDetails"])[:300])
                elif data.get("method") == "Runtime.consoleAPICalled" and data["params"][
                    "type"
                ] in ("error", "assert"):
                    errors.append(json.dumps(data["params"]["args"])[:300])
                elif (
                    data.get("method") == "Log.entryAdded"
                    and data["params"]["entry"]["level"] == "error"
                ):
                    errors.append(data["params"]["entry"]["text"])

        async def call(method: str, session: str | None = None, **params) -> dict:
            key = next(ids)
            pending[key] = asyncio.get_running_loop().create_future()
            message = {"id": key, "method": method, "params": params}
            if session:
                message["sessionId"] = session
            await ws.send_str(json.dumps(message))
            return await asyncio.wait_for(pending[key], 30)

        task = asyncio.create_task(reader())
        target = (await call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            await call(f"{domain}.enable", session)
        await call("Emulation.setDeviceMetricsOverride", session, width=1200, height=2000,
                   deviceScaleFactor=1, mobile=False)  # fmt: skip
        await call("Page.navigate", session, url=page.as_uri())
        for _ in range(100):
            state = await call("Runtime.evaluate", session, expression="document.readyState")
            if state["result"]["value"] == "complete":
                break
            await asyncio.sleep(0.1)
        measured = await call("Runtime.evaluate", session, expression=MEASURE)
        shot = await call(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        await asyncio.sleep(0.3)  # late console messages
        task.cancel()
        return json.loads(measured["result"]["value"]), errors


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_html_report_renders_every_plot_without_console_errors(
    registry_with_snapshots, tmp_path
) -> None:
    evaluate(registry_with_snapshots, window_s=3_000)
    page = tmp_path / "report.html"
    page.write_text(render_html(load_report(registry_with_snapshots, "exp")), encoding="utf-8")
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0",
         "about:blank"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert browser.stderr is not None
        for line in browser.stderr:
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                break
        else:
            raise AssertionError("chromium printed no DevTools address")
        screenshot = tmp_path / "report.png"
        plots, errors = asyncio.run(_inspect(match.group(1), page, screenshot))
    finally:
        browser.terminate()
        browser.wait(30)
    print(f"screenshot: {screenshot}")
    assert errors == []
    assert len(plots) == 4, plots
    for plot in plots:
        assert plot["w"] > 100 and plot["h"] > 50 and plot["shapes"] >= 3, plots
    assert screenshot.stat().st_size > 10_000
