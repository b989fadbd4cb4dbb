"""SQL injection detection measured on a labeled corpus: recall >= 97%, false positives <= 0.2%.

Attacks: classic payloads (tautologies, UNION, stacked queries, time delays, error-based,
hex/CHAR encodings, catalog probes, blind boolean, ORDER BY probes, file functions) placed in
several parameters and paths, each in several encodings (+ for spaces, full and double percent
encoding, random case, /**/ for spaces, tabs and newlines, MySQL versioned comments, %u and
fullwidth quotes).

Benign: generated from realistic templates that deliberately contain what naive detectors trip
on: the words select, union, or, and, drop, sleep, benchmark; names like O'Brien and
D'Angelo; quotes, parentheses, semicolons, '--' and '#'; JSON, GraphQL, OData, JQL and
Lucene queries; base64, JWTs and Ethereum addresses; percent and '+' encodings.
"""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import quote, quote_plus

from streamproc.detectors.sql_injection import match, normalise, suspicious

PAYLOADS = [
    # tautologies and truncation
    "' OR '1'='1",
    "' OR 1=1--",
    "' OR 1=1#",
    '" OR ""="',
    "' OR ''='",
    "admin'--",
    "admin' #",
    "admin'/*",
    "1 OR 1=1",
    "1' OR '1'='1' -- ",
    "') OR ('1'='1",
    "1) OR (1=1",
    "' OR 'x'='x",
    "' or true--",
    "1' AND 1=2 -- -",
    "1 AND 1=1",
    "'||'1'='1",
    "' && 1=1#",
    "1' xor 1=1--",
    "1 or 2>1",
    "' OR 'a' LIKE 'a",
    "1 AND 5=5",
    "x' OR name IS NULL--",
    "' OR 1=1 LIMIT 1--",
    "admin') --",
    '" OR 1=1 --',
    "1' or '1'='1' /*",
    # UNION
    "' UNION SELECT NULL--",
    "' UNION SELECT 1,2,3--",
    "-1 UNION ALL SELECT username,password FROM users",
    "-1 UNION SELECT @@version,2",
    "' union select table_name from information_schema.tables--",
    "0 UNION SELECT user(),database()",
    "1' UNION ALL SELECT NULL,NULL,NULL-- -",
    "' UNION SELECT password FROM users WHERE username='admin'--",
    "1 union(select 1,2)",
    # stacked
    "1; DROP TABLE users--",
    "1'; DROP TABLE users; --",
    "'; INSERT INTO users (name) VALUES ('x')--",
    "1; UPDATE users SET role='admin' WHERE id=1",
    "'; EXEC xp_cmdshell('dir')--",
    "1; SELECT pg_sleep(5)--",
    "'; shutdown--",
    "1; DECLARE @q varchar(99); EXEC(@q)",
    "1'; TRUNCATE TABLE logs--",
    "x'; CREATE USER evil IDENTIFIED BY 'x'--",
    # time based
    "1' AND SLEEP(5)--",
    "1 AND SLEEP(5)",
    "'; WAITFOR DELAY '0:0:5'--",
    "1) AND BENCHMARK(5000000,MD5(1))--",
    "' OR pg_sleep(5)--",
    "1' AND (SELECT * FROM (SELECT(SLEEP(5)))a)--",
    "1 AND 1=DBMS_PIPE.RECEIVE_MESSAGE('a',5)",
    "' || pg_sleep(10) --",
    "1;WAITFOR DELAY '00:00:10'",
    # error based
    "' AND EXTRACTVALUE(1,CONCAT(0x7e,VERSION()))--",
    "' AND UPDATEXML(1,CONCAT(0x7e,(SELECT USER())),1)--",
    "1 AND (SELECT 1 FROM(SELECT COUNT(*),CONCAT(VERSION(),FLOOR(RAND(0)*2))x FROM "
    "INFORMATION_SCHEMA.TABLES GROUP BY x)a)",
    "1 AND 1=CONVERT(int,@@version)",
    "' AND 1=CAST((SELECT version()) AS int)--",
    "1 AND EXP(~(SELECT * FROM (SELECT USER())a))",
    # encodings
    "' OR username=0x61646d696e--",
    "1 UNION SELECT 0x3c3f706870,2",
    "' OR 1=1 AND name=CHAR(97,100,109,105,110)--",
    "'+CHAR(65)+CHAR(66)+'",
    "1 UNION SELECT CHAR(72)||CHR(73)",
    "' and password like 0x25--",
    # catalog probes and blind
    "' AND 1=(SELECT COUNT(*) FROM information_schema.columns)--",
    "1 AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64",
    "' AND LENGTH(database())>1--",
    "1' ORDER BY 5--",
    "1' GROUP BY 1,2--",
    "' HAVING 1=1--",
    "x' AND 1=(SELECT 1 FROM sqlite_master)--",
    "1 AND (SELECT COUNT(*) FROM pg_catalog.pg_tables)>0",
    "' AND substring(@@version,1,1)='5",
    "1 AND exists(select * from users)",
    # files and commands
    "1' AND LOAD_FILE('/etc/passwd')--",
    "' UNION SELECT 1 INTO OUTFILE '/tmp/x'--",
    "1;COPY x FROM PROGRAM 'id'",
    "'; EXEC master..xp_cmdshell 'ping 10.0.0.1'--",
]

CONTEXTS = [
    "/api/users?id={p}",
    "/search?q={p}&page=1",
    "/products/{p}",
    "/login?username={p}&next=/",
    "/items?sort=name&filter={p}",
    "/report.php?year=2024&dept={p}",
]


def _random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _encodings(p: str, rng: random.Random) -> list[str]:
    return [
        quote_plus(p, safe="'()=,*@!-"),  # form encoding, quotes raw
        quote(p, safe=""),  # full percent encoding
        quote(quote(p, safe=""), safe=""),  # double encoding
        quote(_random_case(p, rng), safe="'=,"),  # random case, %20 spaces
        quote(p.replace(" ", "/**/"), safe="/*'=,()"),  # comments as whitespace
        quote(p, safe="'=,()").replace("%20", rng.choice(["%09", "%0a", "%0d%0a", "%0b"])),
        quote(
            p.replace("UNION", "/*!50000UNION*/")
            .replace("union", "/*!50000union*/")
            .replace("SELECT", "/*!SELECT*/"),
            safe="*!/'",
        ),
        quote(p, safe="").replace("%27", "%u0027").replace("%20", "%u0020"),
        quote(p.replace("'", "\uff07"), safe=""),  # fullwidth apostrophe
    ]


def attack_corpus() -> list[str]:
    rng = random.Random(7)
    out = []
    for p in PAYLOADS:
        encs = _encodings(p, rng)
        for enc in rng.sample(encs, 5):
            out.append(rng.choice(CONTEXTS).format(p=enc))
    return out


# -- benign ---------------------------------------------------------------------------------

PHRASES = [
    "how to select a union representative",
    "drop shipping or wholesale",
    "rock and roll",
    "rock 'n' roll hall of fame",
    "O'Brien",
    "Conan O'Brien show",
    "D'Angelo tickets",
    "Guns N' Roses",
    "don't stop believin'",
    "Tom's diner",
    "1 or 2 bedroom apartment",
    "union station chicago",
    "credit union near me",
    "select committee report",
    "Union Select Committee hearing",
    "drop table tennis lessons",
    "sleep apnea (adult)",
    "sleep (8 hours) schedule",
    "benchmark results 2024",
    "information about database schemas",
    "c# tutorial",
    "f# vs c#",
    "#1 hit songs",
    "AT&T store",
    "Tom & Jerry",
    "it's a 1-2-3 deal",
    "what's new",
    "order by date",
    "select all that apply",
    "drop down menu css",
    "where is the union hall",
    "or else",
    "and/or grammar",
    "to be or not to be",
    "either this or that",
    "true or false quiz",
    "yes or no",
    "1=1 meaning",
    "SQL select statement tutorial",
    "sql union select example",
    "mysql sleep function docs",
    '"new york" pizza',
    "\"exact phrase\" or 'single quoted'",
    "price (low to high)",
    "size: M; color: red",
    "see you -- soon",
    "a--b test",
    "50% off",
    "100% cotton",
    "L'Oréal paris",
    "Coeur d'Alene",
    "Côte d'Ivoire",
    "McDonald's menu",
    "it's 5 o'clock",
    "O'Reilly & Sons",
    "Jack o'lantern",
    "ma'am",
    "y'all",
    "rock-n-roll",
    "(555) 123-4567",
    "email me at john.o'hara@example.com",
    "user's guide (2nd ed.)",
    "table of contents",
    "select your country",
    "drop a pin",
    "union jack flag",
    "sleep number bed",
    "the or operator in python",
    "and gate vs or gate",
    "like and subscribe",
    "having fun",
    "group by example pandas",
    "char array c++",
    "0x prefix meaning",
    "exec summary template",
    "update my address",
    "delete my account",
    "insert coin",
    "create a new project",
    "shutdown windows 10",
    "declare independence",
    "grant application",
]

NAMES = [
    "O'Brien",
    "D'Angelo",
    "O'Neil",
    "Smith",
    "García",
    "Núñez",
    "Ng",
    "Van der Berg",
    "Dell'Acqua",
    "N'Golo",
    "Mc'Intyre",
    "Zoë",
    "Björk",
    "Jean-Luc",
    "Mary Ann",
]


def _enc(text: str, rng: random.Random) -> str:
    return quote_plus(text) if rng.random() < 0.6 else quote(text)


def _benign_one(rng: random.Random) -> str:
    kind = rng.randrange(20)
    uid = rng.randrange(1, 10**6)
    if kind == 0:
        return f"/api/v1/users/{uid}/orders?page={rng.randrange(1, 50)}&per_page=50"
    if kind == 1:
        return f"/search?q={_enc(rng.choice(PHRASES), rng)}&page={rng.randrange(1, 9)}"
    if kind == 2:
        return (
            f"/api/customers?last_name={_enc(rng.choice(NAMES), rng)}"
            f"&first_name={_enc(rng.choice(NAMES), rng)}"
        )
    if kind == 3:
        doc = {
            "status": rng.choice(["open", "closed"]),
            "or": [{"owner": rng.choice(NAMES)}, {"tag": rng.choice(PHRASES)}],
            "limit": rng.randrange(10, 100),
        }
        return f"/api/tickets?filter={quote(json.dumps(doc), safe='')}"
    if kind == 4:
        q = '{user(id: "' + str(uid) + '") { name orders(first: 10) { id total } }}'
        return f"/graphql?query={_enc(q, rng)}"
    if kind == 5:
        token = base64.urlsafe_b64encode(rng.randbytes(rng.randrange(16, 64))).decode()
        return f"/oauth/callback?code={token}&state={base64.b64encode(rng.randbytes(12)).decode()}"
    if kind == 6:
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
        body = (
            base64.urlsafe_b64encode(json.dumps({"sub": uid, "name": rng.choice(NAMES)}).encode())
            .decode()
            .rstrip("=")
        )
        return f"/api/session?jwt={header}.{body}.{rng.randbytes(16).hex()}"
    if kind == 7:
        return f"/api/wallet?address=0x{rng.randbytes(20).hex()}&chain=1"
    if kind == 8:
        name = rng.choice(NAMES).replace("'", "''")
        f = f"Name eq '{name}' and Age gt {rng.randrange(18, 70)}"
        return f"/odata/People?$filter={_enc(f, rng)}&$orderby=Name desc"
    if kind == 9:
        jql = (
            f"project = {rng.choice(['ABC', 'OPS', 'WEB'])} AND status = "
            f'"{rng.choice(["In Progress", "Done", "To Do"])}" ORDER BY created DESC'
        )
        return f"/rest/api/2/search?jql={_enc(jql, rng)}"
    if kind == 10:
        q = (
            f"status:(active OR pending) AND age:[{rng.randrange(18, 30)} TO "
            f'{rng.randrange(31, 90)}] AND name:"{rng.choice(NAMES)}"'
        )
        return f"/es/_search?q={_enc(q, rng)}"
    if kind == 11:
        return (
            f"/blog/{rng.randrange(2015, 2025)}--year-in-review?utm_source=newsletter"
            f"&utm_campaign=spring-sale--{rng.randrange(1, 12)}"
        )
    if kind == 12:
        return f"/theme?color=%23{rng.randbytes(3).hex()}&font=Open+Sans"
    if kind == 13:
        return (
            f"/reports?from=2024-0{rng.randrange(1, 9)}-01&to=2024-12-31"
            f"&sort=-created_at&fields=id,name,total"
        )
    if kind == 14:
        title = rng.choice(
            [
                "Rock_%27n%27_roll",
                "Union_(set_theory)",
                "Select_(SQL)",
                "O%27Brien",
                "Drop_(liquid)",
                "Or_(heraldry)",
                "Sleep_(command)",
            ]
        )
        return f"/wiki/{title}"
    if kind == 15:
        comment = rng.choice(PHRASES) + rng.choice(
            ["!", "; thanks", " -- great", " :)", " (really)", "; 5/5"]
        )
        return f"/api/reviews?product={uid}&comment={_enc(comment, rng)}"
    if kind == 16:
        expr = rng.choice(
            [
                "(1+2)*3",
                "a=b",
                "x>=10 and y<=20",
                "(a or b) and c",
                "2^10",
                "sum(a,b)",
                "max(1,2)=2",
            ]
        )
        return f"/calc?expr={_enc(expr, rng)}"
    if kind == 17:
        return (
            f"/static/js/app.{rng.randbytes(4).hex()}.js"
            if rng.random() < 0.5
            else f"/img/products/{uid}-{rng.choice(['front', 'back'])}.webp?w=640&q=75"
        )
    if kind == 18:
        return (
            f"/api/items;jsessionid={rng.randbytes(8).hex().upper()}?category="
            f"{_enc(rng.choice(['tools & hardware', 'books (used)', 'kids; toys']), rng)}"
        )
    email = f"{rng.choice(NAMES).lower().replace(' ', '.')}@example.com"
    return f"/api/subscribe?email={quote(email)}&name={_enc(rng.choice(NAMES), rng)}&ref=home"


def benign_corpus(n: int = 4000) -> list[str]:
    rng = random.Random(11)
    return [_benign_one(rng) for _ in range(n)]


# -- the measurements -------------------------------------------------------------------------


def test_corpus_is_big_and_not_trivially_separable() -> None:
    attacks, benign = attack_corpus(), benign_corpus()
    assert len(attacks) >= 300 and len(benign) >= 3000
    # benign requests that a keyword or character filter would flag
    tricky = [
        b
        for b in benign
        if any(w in normalise(b)[0] for w in ("select", "union", " or ", "drop", "'", "--", ";"))
    ]
    assert len(tricky) >= 600
    # a good share of benign traffic passes the cheap prefilter and reaches the signatures
    assert sum(suspicious(b) for b in benign) >= len(benign) // 3


def test_sql_injection_recall_is_at_least_97_percent() -> None:
    attacks = attack_corpus()
    missed = [a for a in attacks if not match(a)]
    recall = 1 - len(missed) / len(attacks)
    assert recall >= 0.97, f"recall {recall:.3f}; missed e.g. {missed[:10]}"


def test_sql_injection_false_positives_are_at_most_0_2_percent() -> None:
    benign = benign_corpus()
    flagged = [(b, match(b)) for b in benign if match(b)]
    rate = len(flagged) / len(benign)
    assert rate <= 0.002, f"false positives {rate:.4f}: {flagged[:10]}"


def test_every_signature_family_is_exercised_by_the_corpus() -> None:
    seen: set[str] = set()
    for a in attack_corpus():
        seen.update(match(a))
    # tautologies and delays are judged on tokens (test_sqli_tokens.py), the rest by signature
    assert {
        "tokens:logic_on_literals",
        "union_select",
        "stacked_query",
        "tokens:time_delay",
        "error_based",
        "hex_encoding",
        "char_encoding",
        "catalog_probe",
        "comment_truncation",
    } <= seen


def test_normalisation_decodes_three_times_and_strips_comments() -> None:
    triple = quote(quote(quote("' UNION/**/SELECT 1", safe=""), safe=""), safe="")
    text, _ = normalise("/x?id=" + triple)
    assert text == "/x?id=' union select 1"
    text, truncated = normalise("/x?u=admin%27--%20")
    assert truncated and text.strip() == "/x?u=admin'"
    text, _ = normalise("/x?q=a+b%2Bc")  # '+' is a space, an encoded plus is a plus
    assert text == "/x?q=a b+c"
    text, _ = normalise("/x?id=1/*!50000UNION*/%20SeLeCt%091")
    assert text == "/x?id=1 union select 1"


def test_plain_paths_never_reach_the_signatures() -> None:
    assert not suspicious("/api/v1/users/42/orders?page=2&sort=name")
    assert suspicious("/api?q=a%27")
