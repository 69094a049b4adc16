"""One self-contained HTML page per optimize run (and per `eval --html`): what a person reads.

Why HTML: the markdown report could show neither a plot with real axes beside the numbers nor
the demos and failing examples in full. The page is one file with no network at all -- inline
CSS, the plot as inline SVG (matplotlib, `optimizers/plot.py`), no script, no font or image
fetched -- so it opens from a CI artifact, an email or an air-gapped machine alike.

What it holds, top to bottom: the run's summary (model, metric, optimizer and parameters, dev
score before and after, LM requests and tokens, why it stopped, notes); the plot of dev score vs
LM requests with the winner marked; every candidate (label, score and its interval, rows scored,
requests, tokens per call when the optimizer recorded them, its instruction and demos when
recorded); the winner's state per function (adapter, sampling, instruction, every demo) and its
prompt -- the exact messages for the first dev example -- diffed against zero-shot's; and the
dev outcomes per example: the failing ones first with inputs, expected and returned values (the
fields that differ, for structured outputs) and the error text, then every example with the
winner's and zero-shot's score side by side.

Every string from data, models or users is escaped (`html.escape`); nothing is interpreted.
"""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..evaluate.diff import differences, expected_value, is_structured
from ..evaluate.evaluate import EvalReport, ExampleResult, jsonable

Message = Mapping[str, str]


@dataclass(frozen=True)
class PromptPair:
    """One step's messages for the same inputs: zero-shot and the winner's."""

    qualname: str
    zero_shot: Sequence[Message]
    winner: Sequence[Message]


@dataclass(frozen=True)
class Outcomes:
    """Per-example dev results of the winner (and of zero-shot, to compare), with what the
    pass that produced them cost (it is served from the cache when the run scored dev)."""

    winner: EvalReport
    zero_shot: EvalReport | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:32px 0 10px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:20px 0 8px}
.meta{color:#555;margin:0 0 14px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 14px}
th,td{border:1px solid #e1e1e1;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.winner td{background:#fff4e5}tr.fail td{background:#fdf0f0}tr.pass td{background:#f1f9f1}
.kv td:first-child{width:220px;color:#555}
pre{white-space:pre-wrap;overflow-wrap:break-word;background:#fff;border:1px solid #e1e1e1;padding:8px;
margin:4px 0;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.diff .add{background:#e6ffec;display:block}.diff .del{background:#ffebe9;display:block}
.diff .hunk{color:#6e7781;display:block}.diff .ctx{display:block}
figure{margin:8px 0 18px;background:#fff;border:1px solid #e1e1e1;padding:8px}
figure svg{width:100%;height:auto}figcaption{color:#555;font-size:12.5px}
details{margin:4px 0}summary{cursor:pointer;color:#234}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#eee}
.badge.win{background:#e07b1f;color:#fff}.badge.bad{background:#c83232;color:#fff}
.badge.ok{background:#2f8f46;color:#fff}
td.feedback{color:#555;font-size:12.5px;max-width:260px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """The whole document: no external reference of any kind."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Forbid every fetch: the page must render from its own bytes.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def kv_table(rows: Sequence[tuple[str, str]]) -> str:
    """Two-column table; values are HTML already (escape them first)."""
    body = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def pretty(value: Any) -> str:
    """A value as readable text: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(jsonable(value), ensure_ascii=False, indent=2, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def pre(value: Any) -> str:
    return f"<pre>{esc(pretty(value))}</pre>"


# --- states, demos, prompts ------------------------------------------------------------------


def state_html(state: Any, *, open_demos: bool = False) -> str:
    """A FunctionState: adapter, sampling, instruction, demos (each demo's fields in full)."""
    from ..media import readable_value

    rows = [
        ("adapter", f"<code>{esc(state.adapter)}</code>"),
        (
            "sampling (lm_params)",
            f"<code>{esc(json.dumps(dict(state.lm_params), sort_keys=True))}</code>",
        ),
        ("instruction", pre(state.instructions)),
    ]
    demos = list(state.demos)
    parts = [kv_table(rows)]
    if not demos:
        parts.append("<p>No demos (zero-shot).</p>")
        return "".join(parts)
    names: list[str] = []
    for demo in demos:
        names.extend(k for k in demo if k not in names)
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    body = "".join(
        '<tr><td class="num">'
        + str(i)
        + "</td>"
        + "".join(f"<td>{pre(readable_value(demo[n])) if n in demo else ''}</td>" for n in names)
        + "</tr>"
        for i, demo in enumerate(demos, 1)
    )
    table = f'<table><tr><th class="num">#</th>{head}</tr>{body}</table>'
    attr = " open" if open_demos else ""
    parts.append(f"<details{attr}><summary>{len(demos)} demo(s)</summary>{table}</details>")
    return "".join(parts)


def messages_text(messages: Sequence[Message]) -> str:
    """The messages as text; an image part is one line (`media.readable_content`)."""
    from ..media import readable_content

    return "\n".join(
        f"----- {m.get('role', '?')} -----\n{readable_content(m.get('content', ''))}"
        for m in messages
    )


def diff_html(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff, lines coloured: removed (zero-shot) red, added (winner) green."""
    lines = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), before_name, after_name, n=3, lineterm=""
        )
    )
    if not lines:
        return "<p>The winner's prompt is identical to zero-shot's.</p>"
    out = []
    for line in lines:
        if line.startswith(("+++", "---", "@@")):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append(f'<span class="{kind}">{esc(line) or " "}</span>')
    return '<pre class="diff">' + "".join(out) + "</pre>"


def prompts_html(prompts: Sequence[PromptPair]) -> str:
    parts = []
    for pair in prompts:
        parts.append(f"<h3>{esc(pair.qualname)}: prompt diff, zero-shot &rarr; winner</h3>")
        parts.append(
            diff_html(
                messages_text(pair.zero_shot),
                messages_text(pair.winner),
                before_name="zero-shot",
                after_name="winner",
            )
        )
        parts.append(
            "<details><summary>the winner's full messages</summary>"
            + pre(messages_text(pair.winner))
            + "</details>"
        )
    return "".join(parts)


# --- outcomes --------------------------------------------------------------------------------


def got_value(result: ExampleResult) -> Any:
    return jsonable(result.prediction)


def outcome_cell(result: ExampleResult | None) -> str:
    if result is None:
        return "<td>not run</td>"
    if result.error:
        return f'<td><span class="badge bad">error</span>{pre(result.error)}</td>'
    return f"<td>{pre(got_value(result))}</td>"


def field_diff_html(result: ExampleResult) -> str:
    """The fields that differ, for a structured output that ran; empty otherwise."""
    if result.error:
        return ""
    expected = jsonable(expected_value(result.example))
    got = got_value(result)
    if not (is_structured(expected) or is_structured(got)):
        return ""
    found = differences(expected, got)
    if not found:
        return ""
    rows = "".join(
        f"<tr><td><code>{esc(d.path)}</code></td><td>{pre(d.expected)}</td><td>{pre(d.got)}</td></tr>"
        for d in found
    )
    return "<table><tr><th>field</th><th>expected</th><th>got</th></tr>" + rows + "</table>"


def failures_html(report: EvalReport, limit: int = 200) -> str:
    failures = report.failures
    if not failures:
        return '<p><span class="badge ok">no failures</span> every example scored 1.</p>'
    rows = []
    for r in failures[:limit]:
        inputs = pre(r.example.inputs())
        expected = pre(jsonable(expected_value(r.example)))
        got = outcome_cell(r)
        detail = field_diff_html(r)
        feedback = f'<td class="feedback">{esc(r.feedback)}</td>' if r.feedback else "<td></td>"
        rows.append(
            f'<tr class="fail"><td class="num">{r.index}</td><td>{esc(r.example.where)}</td>'
            f"<td>{inputs}</td><td>{expected}</td>{got}"
            f'<td class="num">{r.score:.2f}</td>{feedback}</tr>'
            + (f'<tr class="fail"><td></td><td colspan="6">{detail}</td></tr>' if detail else "")
        )
    more = f"<p>... and {len(failures) - limit} more failures.</p>" if len(failures) > limit else ""
    return (
        '<table class="failures"><tr><th class="num">#</th><th>where</th><th>inputs</th>'
        '<th>expected</th><th>got</th><th class="num">score</th><th>metric feedback</th></tr>'
        + "".join(rows)
        + "</table>"
        + more
    )


def all_examples_html(winner: EvalReport, zero_shot: EvalReport | None, name: str) -> str:
    base = {r.index: r for r in zero_shot.results} if zero_shot is not None else {}
    head = f'<th class="num">#</th><th>where</th><th>inputs</th><th>expected</th><th>{esc(name)}</th><th class="num">score</th>'
    if zero_shot is not None:
        head += '<th>zero-shot</th><th class="num">score</th>'
    rows = []
    for r in winner.results:
        cls = "pass" if r.passed else "fail"
        cells = (
            f'<td class="num">{r.index}</td><td>{esc(r.example.where)}</td>'
            f"<td>{pre(r.example.inputs())}</td><td>{pre(jsonable(expected_value(r.example)))}</td>"
            f'{outcome_cell(r)}<td class="num">{r.score:.2f}</td>'
        )
        if zero_shot is not None:
            other = base.get(r.index)
            score = f"{other.score:.2f}" if other is not None else ""
            cells += f'{outcome_cell(other)}<td class="num">{score}</td>'
        rows.append(f'<tr class="{cls}">{cells}</tr>')
    return f'<table class="examples"><tr>{head}</tr>{"".join(rows)}</table>'


def outcomes_html(
    outcomes: Outcomes,
    name: str = "winner",
    pass_label: str = "Replaying the winner on dev for this table",
) -> str:
    w, z = outcomes.winner, outcomes.zero_shot
    parts = []
    line = f"{esc(name)}: {w.score:.3f} on {w.n} examples ({len(w.failures)} failing, {w.errors} errors)"
    if z is not None:
        before = {r.index: r.passed for r in z.results}
        fixed = sum(1 for r in w.results if r.passed and before.get(r.index) is False)
        broke = sum(1 for r in w.results if not r.passed and before.get(r.index) is True)
        line += f"; zero-shot {z.score:.3f}: the {esc(name)} fixes {fixed} and breaks {broke}"
    parts.append(f"<p>{line}.</p>")
    usage = w.usage
    parts.append(
        f'<p class="meta">{esc(pass_label)}: '
        f"{usage.calls + usage.cache_hits} requests, {usage.cache_hits} answered from the cache,"
        f" {usage.calls} paid.</p>"
    )
    for note in outcomes.notes:
        parts.append(f'<p class="meta">{esc(note)}</p>')
    parts.append(f"<h3>Failing examples ({len(w.failures)})</h3>")
    parts.append(failures_html(w))
    parts.append(
        f"<details><summary>All {w.n} dev examples</summary>"
        + all_examples_html(w, z, name)
        + "</details>"
    )
    return "".join(parts)


# --- the two pages ---------------------------------------------------------------------------


def candidates_html(result: Any, winner: int | None) -> str:
    history = list(result.history)
    if not history:
        return "<p>No candidate was scored on dev: nothing to compare.</p>"
    tokens = any(getattr(c, "prompt_tokens_per_call", None) is not None for c in history)
    head = (
        '<th class="num">#</th><th>candidate</th><th class="num">dev score</th>'
        '<th class="num">95% interval</th><th class="num">dev rows</th>'
        '<th class="num">LM requests so far</th>'
    )
    if tokens:
        head += '<th class="num">tokens / call (prompt + completion)</th>'
        head += '<th class="num">tokens / run</th>'
    head += "<th>status</th>"
    rows = []
    details = []
    for i, c in enumerate(history):
        interval = getattr(c, "interval", None)
        interval_text = f"{interval[0]:.3f}&ndash;{interval[1]:.3f}" if interval else ""
        rows_scored = getattr(c, "dev_examples", 0) or ""
        status = []
        if i == winner:
            status.append('<span class="badge win">winner</span>')
        if getattr(c, "complete", True) is False:
            why = getattr(c, "stopped_because", None) or "racing stopped it"
            status.append(f"stopped early: {esc(why)}")
        cells = (
            f'<td class="num">{i + 1}</td><td>{esc(c.label)}</td>'
            f'<td class="num">{c.dev_score:.3f}</td><td class="num">{interval_text}</td>'
            f'<td class="num">{rows_scored}</td><td class="num">{c.lm_requests}</td>'
        )
        if tokens:
            p = getattr(c, "prompt_tokens_per_call", None)
            q = getattr(c, "completion_tokens_per_call", None)
            cells += (
                f'<td class="num">{fmt(p, 1)} + {fmt(q, 1)}</td>' if p is not None else "<td></td>"
            )
            per_run = getattr(c, "tokens_per_example", None)
            cells += f'<td class="num">{fmt(per_run, 1)}</td>' if per_run is not None else "<td></td>"
        cells += f"<td>{' '.join(status)}</td>"
        rows.append(f'<tr class="{"winner" if i == winner else ""}">{cells}</tr>')
        states = getattr(c, "states", None)
        if states is None and i == winner:
            states = result.states
        if states:
            inner = "".join(f"<h3>{esc(q)}</h3>{state_html(s)}" for q, s in sorted(states.items()))
        else:
            inner = "<p>(this optimizer did not record the candidate's state; its label says what it was)</p>"
        details.append(
            f"<details><summary>candidate {i + 1}: {esc(c.label)} &mdash; {c.dev_score:.3f}</summary>"
            f"{inner}</details>"
        )
    table = f'<table class="candidates"><tr>{head}</tr>{"".join(rows)}</table>'
    return table + "<h3>Each candidate's instruction and demos</h3>" + "".join(details)


def _front_svg(result: Any, title: str) -> str:
    """The accuracy-vs-tokens picture (`optimizers.front`), "" without measured costs."""
    from ..optimizers.front import front_svg

    return front_svg(
        list(result.history), result.best_label, title=f"{title}: score vs cost", metric=result.metric
    )


def optimize_page(
    result: Any,
    *,
    target: str,
    model: str,
    winner: int | None,
    plot_svg: str,
    prompts: Sequence[PromptPair] = (),
    outcomes: Outcomes | None = None,
    outcomes_missing: str | None = None,
) -> str:
    """The HTML report of one optimize run."""
    title = f"{target}: {result.optimizer} (seed {result.seed})"
    usage = result.usage
    summary = [
        ("model", f"<code>{esc(model)}</code>"),
        ("metric", f"<code>{esc(result.metric)}</code>"),
        ("optimizer", f"<code>{esc(result.optimizer)}</code>, seed {result.seed}"),
        (
            "parameters",
            f"<code>{esc(json.dumps(result.params, sort_keys=True, default=str))}</code>",
        ),
        (
            "dev score",
            f"{fmt(result.dev_score_before)} (zero-shot) &rarr; <b>{fmt(result.dev_score_after)}</b>"
            f" (winner: {esc(result.best_label or 'zero-shot')})",
        ),
        (
            "LM requests / tokens",
            f"{usage.requests} requests (cached included); "
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens",
        ),
        ("paid calls / cache hits", f"{usage.paid.calls} / {usage.paid.cache_hits}"),
    ]
    if usage.paid.cost:
        summary.append(("cost", f"${usage.paid.cost:.4f}"))
    if getattr(result, "seconds", 0):
        summary.append(("wall time", f"{result.seconds:.1f} s"))
    if result.stopped:
        summary.append(("stopped early", esc(result.stopped)))
    for note in result.notes:
        summary.append(("note", esc(note)))
    body = [
        f"<h1>{esc(title)}</h1>",
        '<p class="meta">promptcast optimize report: one file, nothing fetched.</p>',
        kv_table(summary),
        "<h2>Dev score vs LM requests</h2>",
        f'<figure class="plot">{plot_svg}<figcaption>Each dot is a candidate scored on dev, at the'
        " number of LM requests the run had spent by then; the line is the best fully scored"
        " candidate so far; the star is the winner; the dashed line is zero-shot.</figcaption>"
        "</figure>",
        f"<h2>Candidates ({len(result.history)})</h2>",
        candidates_html(result, winner),
    ]
    front = _front_svg(result, title)
    if front:
        body += [
            "<h2>Dev score vs tokens per run</h2>",
            f'<figure class="plot">{front}<figcaption>Each dot is a fully scored candidate at the'
            " mean tokens one run of it costs -- every LM call, prompt + completion, on dev; the line is the"
            " front -- candidates no other beats on both score and cost, where any --objective's"
            " pick lies; the star is the winner.</figcaption></figure>",
        ]
    body.append("<h2>The winner</h2>")
    for qualname, state in sorted(result.states.items()):
        body.append(f"<h3>{esc(qualname)}</h3>{state_html(state, open_demos=True)}")
    if prompts:
        body.append(prompts_html(prompts))
    body.append("<h2>Dev outcomes per example</h2>")
    if outcomes is not None:
        body.append(outcomes_html(outcomes))
    else:
        body.append(f"<p>{esc(outcomes_missing or 'Not computed.')}</p>")
    return page(title, "".join(body))


def eval_page(
    report: EvalReport,
    *,
    target: str,
    model: str,
    what: str,
    data: str,
    states: Mapping[str, Any] | None = None,
) -> str:
    """The HTML report of one `eval`: summary, failures with field differences, every example."""
    title = f"{target}: eval of {what}"
    usage = report.usage
    summary = [
        ("model", f"<code>{esc(model)}</code>"),
        ("data", f"<code>{esc(data)}</code>"),
        ("metric", f"<code>{esc(report.metric)}</code>"),
        ("score", f"<b>{report.score:.3f}</b> on {report.n} examples ({report.errors} errors)"),
        (
            "LM calls / tokens",
            f"{usage.calls} calls ({usage.cache_hits} cache hits); "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens",
        ),
        ("wall time", f"{report.seconds:.1f} s"),
    ]
    if report.stopped:
        summary.append(("stopped early", esc(f"{report.stopped} ({report.skipped} not run)")))
    body = [f"<h1>{esc(title)}</h1>", kv_table(summary)]
    if states:
        body.append("<h2>State</h2>")
        for qualname, state in sorted(states.items()):
            body.append(f"<h3>{esc(qualname)}</h3>{state_html(state)}")
    body.append("<h2>Outcomes per example</h2>")
    body.append(outcomes_html(Outcomes(report), name=what, pass_label="This eval"))
    return page(title, "".join(body))
