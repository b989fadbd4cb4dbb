"""Lex a decoded request value as SQL and judge its token pattern.

An injected value lands in one of three places in the application's query::

    ... WHERE id = <value>          context "none":  the value is SQL from its first byte
    ... WHERE name = '<value>'      context "'":     SQL starts after the first ' in the value
    ... WHERE name = "<value>"      context '"':     SQL starts after the first " in the value

The value is lexed once per context that applies (a quoting context applies only if the value
holds that quote: without it, the value cannot leave the string). In a quoting context the
text up to the first quote is the application's own string, closed by the attacker: the
pattern starts with ``s``, and a string left open at the end is closed by the application's
trailing quote. The token classes (one character each, so a pattern reads as a word):

    s  string literal          1  number, hex, true/false/null    v  @variable, @@system
    n  bare word (column...)   f  word followed by '('            k  other SQL keyword
    &  and, or, xor, &&, ||    o  operator (= < > + - like is in not...)
    U  union                   E  select                          X  other statement verb
    T  delay (sleep, benchmark, pg_sleep, waitfor...)             B  order by, group by, having
    c  comment reaching the end of the value                      ( ) , ; .  themselves
    ?  anything else (braces, brackets...)

Whitespace and inline comments (``/**/``) separate tokens and leave none; the markers of a
MySQL executable comment (``/*!50000 ... */``) vanish and its body is lexed. RULES are regexes
over the pattern, each named: a value is injection if any rule matches in any context.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<vc>/\*!\d*|\*/)
    |(?P<bc>/\*.*?(?:\*/|$))
    |(?P<lc>(?:--|\#).*$)
    |(?P<s>'(?:[^'\\]|\\.|'')*(?:'|$)|"(?:[^"\\]|\\.|"")*(?:"|$))
    |(?P<bt>`[^`]*(?:`|$))
    |(?P<num>0x[0-9a-f]*|0b[01]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)
    |(?P<var>@@?[\w.$]*)
    |(?P<word>[^\W\d][\w$]*(?:\.\.?[\w$]+)*)
    |(?P<op>\|\||&&|<=>|<>|!=|<=|>=|::|:=|[=<>!+\-*/%^|&~:])
    |(?P<ch>.)""",
    re.S | re.X,
)

_WORDS: dict[str, str] = {}
for _cls, _words in (
    ("&", "and or xor"),
    ("o", "like rlike regexp is in not between sounds div mod escape collate glob match"),
    ("1", "true false null unknown"),
    ("U", "union"),
    ("E", "select"),
    (
        "X",
        "insert update delete drop create alter truncate exec execute declare shutdown "
        "grant revoke call merge replace copy attach begin",
    ),
    (
        "T",
        "sleep pg_sleep pg_sleep_for benchmark waitfor dbms_lock.sleep "
        "dbms_pipe.receive_message randomblob",
    ),
    (
        "k",
        "from where limit offset into as case when then else end all distinct top delay "
        "values set table procedure outfile dumpfile rownum dual",
    ),
):
    for _w in _words.split():
        _WORDS[_w] = _cls

_PUNCT = {"(": "(", ")": ")", ",": ",", ";": ";", ".": "."}
_MAX_TOKENS = 40  # a pattern longer than this is judged on its start (rules look early)


def fingerprint(text: str) -> str:
    """The token-class pattern of SQL text (lowercase, decoded)."""
    out: list[str] = []
    append = out.append
    pending = ""  # a word waiting to learn whether '(' follows
    prev_word = ""
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws" or kind == "vc":
            continue
        if kind == "bc":
            if m.end() == len(text) or not m.group().endswith("*/"):
                kind = "lc"  # a comment that swallows the rest is a truncation
            else:
                continue
        if pending:
            if m.group() == "(":
                if pending == "n":
                    pending = "f"
            elif pending == "T" and kind != "s":
                pending = "n"  # "sleep" as a word, not a call
            append(pending)
            pending = ""
        if kind == "word":
            word = m.group()
            cls = _WORDS.get(word, "n")
            if word == "by" and out and out[-1] == "n" and prev_word in ("order", "group"):
                out[-1] = "B"
                continue
            if word == "having":
                cls = "B"
            prev_word = word
            if cls in "nkT":
                if word == "waitfor":
                    append("T")
                else:
                    pending = cls
                continue
            append(cls)
        elif kind == "s":
            append("s")
        elif kind == "lc":
            append("c")
            break
        elif kind == "num":
            append("1")
        elif kind == "var":
            append("v")
        elif kind == "bt":
            append("n")
        elif kind == "op":
            append("&" if m.group() in ("||", "&&") else "o")
        else:
            append(_PUNCT.get(m.group(), "?"))
        if len(out) >= _MAX_TOKENS:
            break
    if pending:
        append("n" if pending == "T" else pending)
    return "".join(out)


# {V} an operand: a literal, a call, or a subquery (which takes the rest); {A} opens
# parentheses, {Z} closes them.
_SUBST = {
    "{A}": r"\(*",
    "{Z}": r"\)*",
    "{V}": r"(?:[1sv]|f\([^()]*\)|E.*|[fT])",
    "{N}": r"(?:o?1{Z})",
}  # a number the value started with (-1, 42)


def _rx(pattern: str) -> re.Pattern[str]:
    for key in ("{N}", "{V}", "{A}", "{Z}"):
        pattern = pattern.replace(key, _SUBST[key])
    return re.compile(pattern)


class Rule(NamedTuple):
    name: str
    contexts: str  # which contexts: "n" none, "q" a quoting context
    rx: re.Pattern[str]


# What makes a value change the query's logic, read as token patterns. In a quoting context
# every pattern starts with the closed string "s"; in context none, with the value's own number.
# The first rule that matches names the finding: the most specific come first.
RULES: tuple[Rule, ...] = (
    # ... and sleep(5)   ; waitfor delay '0:0:5'   select(sleep(6))   if(1=1,sleep(5),0)
    Rule("time_delay", "qn", _rx(r"(?:[&;,oEUf]|^s){A}T(?:\([1s(E]|k?s)")),
    # 1 waitfor delay '0:0:5'   (MSSQL runs it after a statement without ';')
    Rule("time_delay", "n", _rx(r"^{N}Tks")),
    # ' or '1'='1   ') or ('x')=('x   ' or ''-'   1 or 1=1   1 and 1=(select ...)
    Rule("logic_on_literals", "q", _rx(r"^s{Z}&{A}o?{V}{Z}(?:o{A}{V}{Z})+")),
    Rule("logic_on_literals", "n", _rx(r"^{N}?&{A}o?{V}{Z}(?:o{A}{V}{Z})+(?:$|[c;&kB)])")),
    # ' or true--   or 1#   ' or 'a'--
    Rule("logic_then_comment", "q", _rx(r"^s{Z}&{A}o?[1sv]{Z}[c;]")),
    Rule("logic_then_comment", "n", _rx(r"^{N}?&{A}o?[1v]{Z}[c;]")),
    # '=0--   '<>1#   (the closed string compared: ''=0 is true in MySQL)
    Rule("compare_then_comment", "q", _rx(r"^s{Z}o{A}[1sv]{Z}c")),
    # x' or name is null   ' and password like 0x25   1 and user_id=1
    Rule("logic_on_column", "q", _rx(r"^s{Z}&{A}n{Z}o")),
    Rule("logic_on_column", "n", _rx(r"^{N}&{A}n{Z}o{A}[1sv]")),
    # ' and ascii(substr(...))   1 and exists(select ...)   1 or (select ...)
    Rule("logic_on_call", "q", _rx(r"^s{Z}&{A}[fET]")),
    Rule("logic_on_call", "n", _rx(r"^{N}&{A}[fET]")),
    # admin'--   ' #   admin') /*
    Rule("quote_then_comment", "q", _rx(r"^s{Z};?c")),
    # ' union select ...   1 union all select 1,2   union select user(),database()
    Rule("union", "q", _rx(r"^s{Z}U")),
    Rule("union", "n", _rx(r"^{N}?{A}U{A}k?{A}E(?:[1sv(o]|n[,ko.]|f\(\)|f\([^)]*\)[,k&o])")),
    # '; drop table ...   1); exec(...)   '); select pg_sleep(10)
    Rule("stacked_query", "q", _rx(r"^s{Z};[XET]")),
    Rule("stacked_query", "n", _rx(r"^{N};[XET]")),
    # ' order by 5   1 order by 10--   ' having 1=1   ' group by x having 1=1
    Rule("order_by_probe", "q", _rx(r"^s{Z}B")),
    Rule("order_by_probe", "n", _rx(r"^{N}B{A}1")),
    # '+(select ...)+'   '||chr(65)   1 rlike (select ...)
    Rule("string_concat", "q", _rx(r"^s{Z}o{A}(?:E|T|f|v)")),
    Rule("operator_subquery", "n", _rx(r"^{N}o\(+E")),
)


class Finding(NamedTuple):
    rule: str
    context: str  # "none", "'" or '"'
    pattern: str  # the token pattern that matched
    value: str  # the decoded value it was read from


def _any_of(contexts: str) -> tuple[re.Pattern[str], tuple[Rule, ...]]:
    """One regex for 'some rule of this context matches' (benign values stop after one
    search), and the rules to name the match."""
    rules = tuple(rule for rule in RULES if contexts in rule.contexts)
    return re.compile("|".join(f"(?:{rule.rx.pattern})" for rule in rules)), rules


_QUOTED, _BARE = _any_of("q"), _any_of("n")


def judge(value: str) -> Finding | None:
    """The first rule a decoded value matches, in the first context where it does."""
    for quote in ("'", '"'):
        at = value.find(quote)
        if at >= 0:
            pattern = "s" + fingerprint(value[at + 1 :])
            if _QUOTED[0].search(pattern):
                return _named(_QUOTED[1], quote, pattern, value)
    pattern = fingerprint(value)
    if _BARE[0].search(pattern):
        return _named(_BARE[1], "none", pattern, value)
    return None


def _named(rules: tuple[Rule, ...], context: str, pattern: str, value: str) -> Finding:
    rule = next(rule for rule in rules if rule.rx.search(pattern))
    return Finding(rule.name, context, pattern, value)
