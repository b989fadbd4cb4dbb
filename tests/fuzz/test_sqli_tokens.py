"""sql_injection's token judge: a decoded value lexed as SQL in the three places it can land
(outside quotes, inside '...', inside "..."), its token pattern judged by named rules.

The labelled corpus is tests/fuzz/sqli_grammar_corpus.py: attacks composed from SQL grammar for
five databases, disguised and encoded 0-2 times; hard benign requests; an nginx access log.
"""

from __future__ import annotations

from collections import Counter

import pytest

from streamproc.detectors._sql_tokens import fingerprint, judge
from streamproc.detectors.sql_injection import decode, findings, match, suspicious
from streamproc.detectors.testing import T0, Harness
from tests.fuzz.sqli_grammar_corpus import LOG_LINE, access_log, attack_corpus, benign_corpus

# The examples of what signatures kept missing, verbatim, as the value of a parameter.
ISSUE_EXAMPLES = [
    ("or 1=1", "none", "&1o1"),
    ("or true--", "none", "&1c"),
    ("42 and 1=1", "none", "1&1o1"),
    ("') or ('x')=('x", "'", "s)&(s)o(s"),
    ("' or ''-'", "'", "s&sos"),
    ('" or ""&"', '"', "s&sos"),
    ("' --", "'", "sc"),
    ('" #', '"', "sc"),
]


@pytest.mark.parametrize(("value", "context", "pattern"), ISSUE_EXAMPLES)
def test_issue_example_is_judged_in_its_context(value: str, context: str, pattern: str) -> None:
    finding = judge(value)
    assert finding is not None and (finding.context, finding.pattern) == (context, pattern)


@pytest.mark.parametrize(("value", "_context", "_pattern"), ISSUE_EXAMPLES)
def test_issue_example_is_caught_in_a_request_in_every_encoding(
    value: str, _context: str, _pattern: str
) -> None:
    from urllib.parse import quote, quote_plus

    for enc in (quote_plus(value), quote(value, safe=""), quote(quote(value, safe=""), safe="")):
        endpoint = f"/api/items?id={enc}&sort=asc"
        assert any(n.startswith("tokens:") for n in match(endpoint)), endpoint


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("1 waitfor delay '0:0:5'", "time_delay"),  # MSSQL: no ';' needed after a statement
        ("'=0-- ", "compare_then_comment"),  # ''=0 is true in MySQL
        ("1' rlike sleep(5) and 'x'='x", "time_delay"),
        ("1) and 5521=5521 and (8120=8120", "logic_on_literals"),
        ("' or 2 between 1 and 3--", "logic_on_literals"),
        ("1 or 1=1 order by 1", "logic_on_literals"),
    ],
)
def test_probes_from_scanner_output_are_judged(value: str, rule: str) -> None:
    finding = judge(value)
    assert finding is not None and finding.rule == rule, finding


def test_fingerprint_classes_read_as_sql() -> None:
    assert fingerprint("-1 union all select @@version,null from dual") == "o1UkEv,1kk"
    assert fingerprint("1 and sleep(5)") == "1&T(1)"
    assert fingerprint("sleep well") == "nn"  # a delay word without a call is a word
    assert fingerprint("1 order by 10 -- x") == "1B1c"
    assert fingerprint("1/**/or/**/1=1") == "1&1o1"  # inline comments separate tokens
    assert fingerprint("1 /*!50000union*/ select 1") == "1UE1"  # executable comment: its body
    assert fingerprint("x /* rest") == "nc"  # an open comment swallows the rest
    assert fingerprint("'o''brien' || ascii(x)") == "s&f(n)"


def test_a_value_without_its_quote_is_only_judged_outside_quotes() -> None:
    assert judge("rock and roll") is None
    assert judge("o'brien") is None and judge("d'artagnan and athos") is None
    assert judge('say "hello" or "bye"') is None


def test_benign_values_that_look_like_sql_pass() -> None:
    for value in (
        "select the best union jobs",
        "drop shipping and order by price",
        "1 or 2 bedrooms",
        "1+1=2",
        "x>=10 and y<=20",
        "sleep(5) in python",
        "union select committee",
        "2024--year-in-review",
        "tom's diner -- live",
        "3 > 2 or 2 < 3?",
        "price: 10-20",
        "max(1,2)=2",
    ):
        assert judge(value) is None, value


@pytest.mark.parametrize(
    "endpoint",
    [
        "/search?q=sleep%285%29+in+python",
        "/calc?expr=3+%3E+2+or+2+%3C+3%3F",
        "/download?name=sleep(5)%20in%20python.pdf&token=abc",
    ],
)
def test_a_delay_or_comparison_written_as_text_is_not_an_alert(endpoint: str) -> None:
    # a call with no operator, quote or statement before it changes no query
    assert match(endpoint) == []


def test_alert_names_the_context_and_the_token_pattern() -> None:
    h = Harness("sql_injection")
    [alert] = h.send(
        T0,
        endpoint="/items?id=%27)%20or%20(%27x%27)%3D(%27x",
        ip_address="192.0.2.7",
        method="GET",
        status_code=200,
    )
    assert "tokens:logic_on_literals" in alert.evidence["signatures"]
    [tok] = alert.evidence["tokens"]
    assert tok == {
        "rule": "logic_on_literals",
        "context": "'",
        "pattern": "s)&(s)o(s",
        "value": "') or ('x')=('x",
    }
    assert "inside '...'" in alert.body and "s)&(s)o(s" in alert.body


# -- the labelled corpus ----------------------------------------------------------------------


def test_grammar_corpus_is_big_and_covers_every_class() -> None:
    attacks, benign, log = attack_corpus(), benign_corpus(), access_log()
    assert len(attacks) >= 1000 and len(benign) >= 5000 and len(log) >= 10000
    classes = Counter(cls for cls, _ in attacks)
    assert set(classes) == {"tautology", "quote_comment", "time", "dbms", "order_by"}
    assert min(classes.values()) >= 100
    # the benign set is hard: most of it passes the prefilter, many hold quotes or SQL words
    decoded = [decode(b) for b in benign]
    assert sum(suspicious(b) for b in benign) >= 0.8 * len(benign)
    assert sum("'" in d or '"' in d for d in decoded) >= 2000
    assert (
        sum(
            any(w in d for w in (" or ", " and ", "select", "union", "order by", "--"))
            for d in decoded
        )
        >= 1500
    )


def test_grammar_corpus_recall_is_at_least_98_percent() -> None:
    attacks = attack_corpus()
    missed = [(cls, a) for cls, a in attacks if not match(a)]
    for miss in missed:
        print("missed", *miss)
    recall = 1 - len(missed) / len(attacks)
    print(f"recall {recall:.4f} on {len(attacks)} attacks")
    assert recall >= 0.98, missed[:20]


def test_token_judge_alone_finds_most_of_the_corpus() -> None:
    attacks = attack_corpus()
    found = sum(bool(findings(a)) for _, a in attacks)
    print(f"token judge alone: {found}/{len(attacks)}")
    assert found / len(attacks) >= 0.95


def test_no_false_positive_on_hard_benign_requests() -> None:
    flagged = [(b, match(b)) for b in benign_corpus() if match(b)]
    for f in flagged:
        print("false positive", *f)
    assert flagged == []


def test_no_false_positive_on_an_nginx_access_log() -> None:
    lines = access_log()
    parsed = [LOG_LINE.match(line) for line in lines]
    assert all(parsed), "every line is in the combined format"
    flagged = [(m.group(5), match(m.group(5))) for m in parsed if m and match(m.group(5))]
    for f in flagged:
        print("false positive", *f)
    assert flagged == []
