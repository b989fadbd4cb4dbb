"""SQL injection on payloads written apart from the signatures (by another engineer, from
public cheat sheets and scanner output), so the labelled corpus in test_sqli_corpus.py is not
the only judge. Each attack must be caught; each benign request must pass."""

from __future__ import annotations

import pytest

from streamproc.detectors.sql_injection import match

ATTACKS = """/index.php?id=1 AND 1=1
/?id=1' AND SLEEP(5)#
/?q=1%27%20AND%20%28SELECT%201%20FROM%20%28SELECT%28SLEEP%285%29%29%29a%29--%20-
/?id=-1 UNION ALL SELECT NULL,NULL,CONCAT(0x7171,0x71)--
/?id=1;WAITFOR DELAY '0:0:5'--
/?user=admin'/**/OR/**/1=1#
/?id=1 AND extractvalue(1,concat(0x7e,version()))
/?id=1 ORDER BY 10--
/?cat=1' or '1'='1
/?id=1%20or%201%3D1
/?id=1' AND 1=CONVERT(int,(SELECT @@version))--
/?id=1);DROP TABLE users;--
/?name=x' UNION SELECT table_name FROM information_schema.tables--
/?id=1 AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64
/?id=(select(0)from(select(sleep(6)))v)/*'+(select(0)from(select(sleep(6)))v)+'"+(select(0)from(select(sleep(6)))v)+"*/
/?id=1 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))
/?id=1' AND pg_sleep(5)--
/?search=%2527%2520OR%25201%253D1--
/?id=1' AND 'a'='a
/?id=1 AND 2>1
/?uid=1' oR '2'>'1
/?id=1/**/UnIoN/**/SeLeCt/**/1,2,3
/?id=1 and benchmark(5000000,md5(1))
/?item=5' and updatexml(1,concat(0x7e,(select user())),1)-- -
/?id=1' having 1=1--
/?id=1' GROUP BY columnnames having 1=1 --
/?username=admin'--
/?id=1 AND (SELECT COUNT(*) FROM sysobjects)>0
/?p=1' AND substr((select database()),1,1)='a
/?id=1%27%20UNION%20SELECT%201%2Cload_file(%27%2Fetc%2Fpasswd%27)--
/?id=1 union select 1,group_concat(schema_name) from information_schema.schemata
/?id=1'||(SELECT CHR(65)||CHR(66))||'
/?id=1; exec master..xp_cmdshell 'ping 10.0.0.1'--
/?q=');SELECT pg_sleep(10)--""".splitlines()

BENIGN = """/search?q=select+a+union+representative
/api/users?name=O'Brien
/blog/how-to-drop-a-table-in-sql
/products?sort=price&order=desc
/api/v1/items?filter={"and":[{"or":1}]}
/wiki/Union_(set_theory)
/search?q=rock+and+roll+or+jazz
/search?q=select%20your%20plan
/page?id=123&ref=abc==
/api?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig
/docs/sql/union-select-tutorial
/search?q=where+is+the+order+by+date
/search?q=Tom+and+Jerry+or+Garfield
/api/orders?status=shipped&limit=50&offset=100
/search?q=%22select%22+keyword+meaning
/cart?item=1&qty=2&coupon=SAVE--10
/search?q=1+or+2+bedrooms
/articles/the-sleep-of-reason
/q?text=It's+a+dog's+life
/search?q=delete+my+account
/api/v2/reports?from=2024-01-01&to=2024-12-31&group_by=day
/search?q=and%2For
/login?next=/dashboard?tab=1
/search?q=benchmark+results+2024
/files/char-sheet.pdf
/search?q=update+drivers+windows+11""".splitlines()


@pytest.mark.parametrize("endpoint", ATTACKS)
def test_independent_attack_is_caught(endpoint: str) -> None:
    assert match(endpoint), endpoint


@pytest.mark.parametrize("endpoint", BENIGN)
def test_independent_benign_request_passes(endpoint: str) -> None:
    assert match(endpoint) == [], endpoint
