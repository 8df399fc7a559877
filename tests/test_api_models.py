"""The Models panel's API (`/api/v1/models`, `api/models.py`): the workspace's models with their model cards'
confusion matrix and ROC where present, served only from inside the models folder; and the panel in a real
headless Chromium showing them."""

# the fixtures come from api_support and test_api_browser (conftest.py belongs to the lead)
# ruff: noqa: F811

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
from starlette.testclient import TestClient

from api_support import DemoApi, client, demo_api, demo_workspace  # noqa: F401
from healthswarm.detect.learn.card import CARD_FILE, ModelCard
from test_api_browser import browser, keep, live, open_dashboard  # noqa: F401

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend


def svg_plot(path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 3.4))
    if "ROC" in title:
        ax.plot([0, 0.1, 0.3, 1], [0, 0.7, 0.92, 1], label="attack (AUC 0.93)")
        ax.plot([0, 1], [0, 1], linestyle=":")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend()
    else:
        ax.imshow([[412, 9], [14, 165]], cmap="Blues")
        for (i, j), n in {(0, 0): 412, (0, 1): 9, (1, 0): 14, (1, 1): 165}.items():
            ax.text(j, i, n, ha="center", va="center")
        ax.set_xticks([0, 1], ["benign", "attack"])
        ax.set_yticks([0, 1], ["benign", "attack"])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def add_models(workspace: Path) -> None:
    """Two models as `model train` leaves them: one with both plots, one whose card has none yet."""
    for name, plots in (("flows-rf", ("confusion.svg", "roc.svg")), ("telemetry-if", ())):
        folder = workspace / "models" / name
        folder.mkdir(parents=True)
        ModelCard(kind="flow-classifier" if plots else "telemetry-novelty", name=name,
                  classes=["benign", "attack"], metrics={"f1_macro": 0.9412, "rows": 600}).write(folder / CARD_FILE)
        for plot in plots:
            svg_plot(folder / plot, ("Confusion matrix" if plot == "confusion.svg" else "ROC") + f" — {name}")


def test_models_list_says_which_plots_each_has(client: TestClient, demo_api: DemoApi) -> None:
    viewer = demo_api.headers("viewer")
    assert client.get("/api/v1/models", headers=viewer).json() == []
    add_models(demo_api.workspace)
    models = {m["name"]: m for m in client.get("/api/v1/models", headers=viewer).json()}
    assert models["flows-rf"]["plots"] == {"confusion.svg": "/api/v1/models/flows-rf/plots/confusion.svg",
                                           "roc.svg": "/api/v1/models/flows-rf/plots/roc.svg"}
    assert models["telemetry-if"]["plots"] == {"confusion.svg": None, "roc.svg": None}
    assert models["flows-rf"]["metrics"] == {"f1_macro": 0.9412, "rows": 600} and models["flows-rf"]["status"] == "ok"
    r = client.get("/api/v1/models/flows-rf/plots/roc.svg", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.content == (demo_api.workspace / "models" / "flows-rf" / "roc.svg").read_bytes()
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert client.get("/api/v1/models/flows-rf/plots/roc.svg").status_code == 401


@pytest.mark.parametrize("path", [
    "/api/v1/models/telemetry-if/plots/roc.svg",      # no such plot yet
    "/api/v1/models/flows-rf/plots/card.json",        # a file of the folder that is no plot
    "/api/v1/models/..%2F..%2Fhealthswarm.db/plots/roc.svg",
    "/api/v1/models/%2E%2E/plots/roc.svg",
    "/api/v1/models/flows-rf/plots/..%2Fcard.json",
    "/api/v1/models/linked/plots/roc.svg",            # a symlink out of the models folder
])
def test_a_plot_path_never_leaves_the_models_folder(client: TestClient, demo_api: DemoApi, path: str) -> None:
    add_models(demo_api.workspace)
    outside = demo_api.workspace / "secret.svg"
    outside.write_text("<svg xmlns='http://www.w3.org/2000/svg'><text>secret</text></svg>")
    linked = demo_api.workspace / "models" / "linked"
    linked.mkdir()
    os.symlink(outside, linked / "roc.svg")
    r = client.get(path, headers=demo_api.headers("viewer"))
    assert r.status_code == 404 and "secret" not in r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_dashboard_models_panel_shows_the_plots(live: tuple[str, DemoApi], browser,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    base, api = live
    add_models(api.workspace)
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    problems = open_dashboard(page, base, api.tokens["viewer"])
    page.wait_for_selector("#models .model-card[data-model='flows-rf'] img.model-plot", timeout=15_000)
    plots = page.locator("#models .model-card[data-model='flows-rf'] img.model-plot")
    assert plots.count() == 2
    assert all(plots.nth(i).evaluate("img => img.complete && img.naturalWidth > 100") for i in range(2))
    assert "no confusion matrix or ROC curve" in page.locator(".model-card[data-model='telemetry-if']").inner_text()
    page.locator("#models-panel").screenshot(path=str(tmp_path / "models.png"))
    keep(tmp_path / "models.png")
    assert not problems, problems
    page.close()
