"""The pages, through the HTTP client: each editor, errors by path, versions, archive."""

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.strategies.models import Strategy, StrategyVersion
from apps.strategies.specs import EXAMPLE_SCRIPT
from tests.apps.strategies.conftest import CROSS_ENTRY, CROSS_EXIT, builder_post, sma

pytestmark = pytest.mark.django_db
CREATE = reverse("strategies:create")


def _nothing_written():
    assert not Strategy.objects.exists()
    assert not StrategyVersion.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="strategy.").exists()


def test_the_list_explains_the_three_kinds_when_empty(alice_client):
    response = alice_client.get(reverse("strategies:list"))
    assert response.status_code == 200
    for text in ("Template", "Condition builder", "Python script", "New strategy"):
        assert text in response.text


def test_the_list_shows_name_kind_and_latest_version(alice_client, cross_strategy):
    response = alice_client.get(reverse("strategies:list"))
    assert "Cross" in response.text
    assert "Condition builder" in response.text
    assert "v1" in response.text


def test_the_template_editor_shows_cards_then_a_typed_form(alice_client):
    cards = alice_client.get(CREATE, {"kind": "template"})
    assert "When it works" in cards.text
    assert "Donchian breakout" in cards.text
    form = alice_client.get(CREATE, {"kind": "template", "template": "rsi_swing"})
    assert 'name="param_period"' in form.text
    assert 'min="2"' in form.text and 'max="1000"' in form.text and 'step="1"' in form.text
    assert "RSI bars." in form.text


def test_it_creates_a_template_strategy(alice_client):
    response = alice_client.post(
        CREATE + "?kind=template&template=sma_cross",
        {
            "kind": "template",
            "template": "sma_cross",
            "name": "Trend",
            "param_fast": "8",
            "param_slow": "21",
            "action": "save",
        },
    )
    strategy = Strategy.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("strategies:detail", args=[strategy.pk])
    assert strategy.versions.get().params == {"fast": 8, "slow": 21}
    detail = alice_client.get(response["Location"])
    assert "SMA($fast) crosses above SMA($slow)" in detail.text
    assert "fast = <strong>8</strong>" in detail.text


def test_a_template_parameter_out_of_range_is_shown_next_to_it(alice_client):
    response = alice_client.post(
        CREATE + "?kind=template",
        {
            "kind": "template",
            "template": "sma_cross",
            "name": "Trend",
            "param_fast": "1",
            "param_slow": "30",
            "action": "save",
        },
    )
    assert response.status_code == 400
    assert "fast must be between 2 and 1000, got 1" in response.text
    assert 'id="param_fast" value="1"' in response.text
    _nothing_written()


def test_it_creates_a_condition_strategy_from_the_builder(alice_client):
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, name="Cross", note="first")
    response = alice_client.post(CREATE + "?kind=conditions", data)
    assert response.status_code == 302
    version = StrategyVersion.objects.get()
    assert version.entry == CROSS_ENTRY
    assert version.exit == CROSS_EXIT
    assert version.note == "first"


def test_an_invalid_tree_shows_the_path_next_to_the_node_and_writes_nothing(alice_client):
    entry = {
        "all": [
            {"left": sma(10), "op": "crosses_above", "right": sma(30)},
            {"left": sma(0), "op": ">", "right": {"field": "close"}},
        ]
    }
    response = alice_client.post(
        CREATE + "?kind=conditions", builder_post(entry, CROSS_EXIT, name="X")
    )
    assert response.status_code == 400
    text = response.text
    assert "entry.all[1].left.params.period: period must be an integer between 1 and 1000" in text
    # The message sits inside the offending node, and its input is marked invalid.
    node = text[text.index('id="node-entry-1"') :]
    node = node[: node.index('id="node-exit"')]
    assert "entry.all[1].left.params.period" in node
    assert 'id="entry-1__left_p_period" value="0"' in node
    assert 'aria-invalid="true"' in node
    _nothing_written()


def test_an_unknown_indicator_parameter_in_the_json_is_named(alice_client):
    document = {
        "entry": {"left": {"indicator": "rsi", "params": {"length": 14}}, "op": "<", "right": 30},
        "exit": CROSS_EXIT,
    }
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, name="X", json=json.dumps(document))
    response = alice_client.post(CREATE + "?kind=conditions", data)
    assert response.status_code == 400
    assert "entry.left.params.length: unknown parameter &#x27;length&#x27; for rsi" in response.text
    _nothing_written()


def test_edited_json_is_saved_as_is(alice_client):
    document = {"entry": CROSS_ENTRY, "exit": {"left": {"field": "close"}, "op": "<", "right": 5}}
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, name="X", json=json.dumps(document))
    assert alice_client.post(CREATE + "?kind=conditions", data).status_code == 302
    assert StrategyVersion.objects.get().exit == document["exit"]


def test_builder_actions_return_the_tree_partial(alice_client):
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, action="add_group:entry")
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="builder"')
    assert 'name="entry.1__type" value="group"' in response.text
    assert 'name="entry.1__mode" value="any"' in response.text
    assert 'name="entry.1.0__type" value="cond"' in response.text
    _nothing_written()

    data = builder_post(
        {"all": [*CROSS_ENTRY["all"], {"any": CROSS_ENTRY["all"]}]},
        CROSS_EXIT,
        action="remove:entry.0",
    )
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    # The group moved up to position 0 and its condition came with it.
    assert 'name="entry.0__mode" value="any"' in response.text
    assert (
        'name="entry.0.0__left_p_period" ' in response.text
        or "entry.0.0__left_p_period" in response.text
    )
    assert "entry.1__type" not in response.text

    data = builder_post(CROSS_ENTRY, CROSS_EXIT, action="mode_any:exit")
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    assert 'name="exit__mode" value="any"' in response.text


def test_changing_the_indicator_renders_its_parameters(alice_client):
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, action="refresh")
    data["entry.0__left_indicator"] = "macd"
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    for name in ("fast", "slow", "signal"):
        assert f'name="entry.0__left_p_{name}"' in response.text
    assert 'name="entry.0__left_output"' in response.text


def test_it_creates_a_script_strategy(alice_client):
    page = alice_client.get(CREATE, {"kind": "script"})
    assert "def main(sdk, params):" in page.text
    response = alice_client.post(
        CREATE + "?kind=script",
        {
            "kind": "script",
            "name": "S",
            "script": EXAMPLE_SCRIPT,
            "params": '{"fast": 10, "slow": 30}',
            "action": "save",
        },
    )
    assert response.status_code == 302
    assert StrategyVersion.objects.get().script == EXAMPLE_SCRIPT


def test_a_script_syntax_error_is_shown_with_its_line(alice_client):
    response = alice_client.post(
        CREATE + "?kind=script",
        {
            "kind": "script",
            "name": "S",
            "script": "def main(sdk, params):\n    return (\n",
            "params": "{}",
            "action": "save",
        },
    )
    assert response.status_code == 400
    assert 'id="script-error"' in response.text
    assert "line 2" in response.text
    _nothing_written()


def test_bad_script_params_json_is_named(alice_client):
    response = alice_client.post(
        CREATE + "?kind=script",
        {
            "kind": "script",
            "name": "S",
            "script": EXAMPLE_SCRIPT,
            "params": "{fast: 1}",
            "action": "save",
        },
    )
    assert response.status_code == 400
    assert "not valid JSON (line 1, column 2)" in response.text
    _nothing_written()


def test_editing_makes_version_2_and_a_no_op_edit_makes_none(alice_client, cross_strategy):
    edit = reverse("strategies:edit", args=[cross_strategy.pk])
    page = alice_client.get(edit)
    assert "Save as version 2" in page.text
    assert 'id="entry-0__left_p_period" value="10"' in page.text

    same = alice_client.post(edit, builder_post(CROSS_ENTRY, CROSS_EXIT), follow=True)
    assert "No changes" in same.text
    assert cross_strategy.versions.count() == 1

    faster = {"all": [{"left": sma(8), "op": "crosses_above", "right": sma(30)}]}
    response = alice_client.post(edit, builder_post(faster, CROSS_EXIT, note="faster"))
    assert response.status_code == 302
    assert list(cross_strategy.versions.values_list("number", flat=True)) == [1, 2]
    assert cross_strategy.versions.get(number=1).entry == CROSS_ENTRY
    detail = alice_client.get(reverse("strategies:detail", args=[cross_strategy.pk]))
    assert "SMA(8) crosses above SMA(30)" in detail.text
    assert "v1" in detail.text and "v2" in detail.text


def test_the_version_page_is_read_only(alice_client, cross_strategy):
    version = cross_strategy.versions.get()
    response = alice_client.get(reverse("strategies:version_detail", args=[version.pk]))
    assert response.status_code == 200
    assert "SMA(10) crosses above SMA(30)" in response.text
    assert "<form" not in response.text.split("<main", 1)[1].replace('class="logout-form"', "")
    assert (
        alice_client.post(reverse("strategies:version_detail", args=[version.pk])).status_code
        == 405
    )


def test_archiving_removes_it_from_the_list(alice_client, cross_strategy):
    response = alice_client.post(reverse("strategies:archive", args=[cross_strategy.pk]))
    assert response.status_code == 302
    link = f'href="{reverse("strategies:detail", args=[cross_strategy.pk])}"'
    assert "Archived Cross" in alice_client.get(reverse("strategies:list")).text
    assert link not in alice_client.get(reverse("strategies:list")).text
    assert link in alice_client.get(reverse("strategies:list") + "?archived=1").text
    edit = alice_client.get(reverse("strategies:edit", args=[cross_strategy.pk]))
    assert edit.status_code == 302


def test_charlie_gets_404_on_every_page_of_alices_strategy(charlie_client, cross_strategy):
    version = cross_strategy.versions.get()
    urls = [
        ("get", reverse("strategies:detail", args=[cross_strategy.pk])),
        ("get", reverse("strategies:edit", args=[cross_strategy.pk])),
        ("post", reverse("strategies:edit", args=[cross_strategy.pk])),
        ("post", reverse("strategies:archive", args=[cross_strategy.pk])),
        ("get", reverse("strategies:version_detail", args=[version.pk])),
    ]
    for method, url in urls:
        data = builder_post(CROSS_ENTRY, {"any": CROSS_EXIT["all"]}) if method == "post" else None
        assert getattr(charlie_client, method)(url, data).status_code == 404, url
    assert cross_strategy.versions.count() == 1
    cross_strategy.refresh_from_db()
    assert not cross_strategy.is_archived
    assert "Cross" not in charlie_client.get(reverse("strategies:list")).text


def test_applying_json_rebuilds_the_builder_or_shows_its_errors(alice_client):
    document = {
        "entry": {"any": [{"left": {"field": "close"}, "op": ">", "right": 100}]},
        "exit": CROSS_EXIT,
    }
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, action="apply_json", json=json.dumps(document))
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'name="entry__mode" value="any"' in response.text
    assert 'id="entry-0__left_field"' in response.text
    assert 'id="entry-0__right_value" value="100"' in response.text

    document["entry"]["any"][0]["op"] = "equals"
    data = builder_post(CROSS_ENTRY, CROSS_EXIT, action="apply_json", json=json.dumps(document))
    response = alice_client.post(CREATE + "?kind=conditions", data, HTTP_HX_REQUEST="true")
    assert "entry.any[0].op: unknown operator &#x27;equals&#x27;" in response.text
    # The builder keeps what it had; the JSON keeps what was typed.
    assert 'name="entry__mode" value="all"' in response.text
    assert "&quot;equals&quot;" in response.text
    _nothing_written()


def test_an_untouched_builder_is_no_change_for_a_tree_spelled_differently(alice_client, alice):
    from apps.strategies.services import strategy_create

    entry = {"left": {"indicator": "rsi"}, "op": "<", "right": 30}
    strategy, _ = strategy_create(
        owner=alice, name="Terse", kind="conditions", entry=entry, exit=CROSS_EXIT
    )
    edit = reverse("strategies:edit", args=[strategy.pk])
    loaded = builder_post(
        {
            "all": [
                {
                    "left": {"indicator": "rsi", "params": {"period": 14}},
                    "op": "<",
                    "right": {"value": 30},
                }
            ]
        },
        CROSS_EXIT,
    )
    response = alice_client.post(edit, loaded, follow=True)
    assert "No changes" in response.text
    assert strategy.versions.count() == 1
