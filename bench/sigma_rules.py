"""The 100 Sigma rules of ``streamproc bench detect --sigma bench/sigma`` (written by
``python -m bench.sigma_rules``): web server detections in the style of SigmaHQ's
``rules/web`` (injection strings in the query, scanner user agents, web shells, sensitive
files, odd methods), each with its own values so none is a copy of another. A few use
``re`` and numeric comparisons, which no literal can pre-select: they are judged on every
record, as such rules cost in any engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

FAMILIES = {
    "sqli": [
        "union select",
        "select+",
        "' or '1'='1",
        "information_schema",
        "sleep(",
        "benchmark(",
        "waitfor delay",
        "xp_cmdshell",
        "load_file(",
        "into outfile",
        "@@version",
        "pg_sleep",
        "utl_inaddr",
        "extractvalue(",
        "updatexml(",
    ],
    "xss": [
        "<script",
        "javascript:",
        "onerror=",
        "onload=",
        "alert(",
        "document.cookie",
        "<svg",
        "<iframe",
        "eval(",
        "fromcharcode",
    ],
    "traversal": [
        "../",
        "..%2f",
        "%2e%2e/",
        "..\\\\",
        "%252e%252e",
        "....//",
        "/etc/passwd",
        "/etc/shadow",
        "win.ini",
        "boot.ini",
    ],
    "rce": [
        "${jndi:",
        ";wget ",
        "|curl ",
        "$(whoami)",
        "`id`",
        "/bin/bash",
        "cmd.exe",
        "powershell",
        "nc -e",
        "python -c",
    ],
    "ssrf": [
        "169.254.169.254",
        "metadata.google.internal",
        "file:///",
        "gopher://",
        "dict://",
        "localhost:22",
        "127.0.0.1:6379",
        "0x7f000001",
        "[::1]",
        "2130706433",
    ],
}
SCANNERS = [
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "dirbuster",
    "gobuster",
    "wpscan",
    "nuclei",
    "acunetix",
    "netsparker",
    "burp",
    "w3af",
    "havij",
    "fimap",
    "hydra",
    "openvas",
    "nessus",
    "arachni",
    "skipfish",
]
SHELLS = [
    "cmd.php",
    "shell.php",
    "c99.php",
    "r57.php",
    "wso.php",
    "b374k.php",
    "shell.jsp",
    "cmd.jsp",
    "cmd.aspx",
    "shell.aspx",
    "up.php",
    "x.php",
    "webshell.php",
    "backdoor.php",
    "eval.php",
]
FILES = [
    ".git/config",
    ".env",
    "wp-config.php.bak",
    ".htpasswd",
    "id_rsa",
    ".aws/credentials",
    "web.config",
    ".DS_Store",
    "phpinfo.php",
    "server-status",
    "config.json.bak",
    "database.sql",
    "dump.sql",
    ".svn/entries",
    "backup.zip",
]


def rules() -> list[dict]:
    out: list[dict] = []

    def rule(title: str, detection: dict, level: str = "high") -> None:
        n = len(out)
        out.append(
            {
                "title": title,
                "id": str(uuid.UUID(int=0x5160_0000 + n)),
                "status": "experimental",
                "level": level,
                "logsource": {"category": "webserver"},
                "detection": detection,
            }
        )

    # 40: one family's strings, 3-5 of them per rule, with a 404 filter (SigmaHQ's shape)
    for fam, values in FAMILIES.items():
        for i in range(8):
            picked = [values[(i * 3 + k) % len(values)] for k in range(3 + i % 3)]
            rule(
                f"Web {fam} attempt {i + 1}",
                {
                    "selection": {"cs-uri-query|contains": picked},
                    "filter": {"sc-status": 404},
                    "condition": "selection and not filter",
                },
            )
    # 20: scanner user agents
    for name in SCANNERS:
        rule(
            f"Scanner user agent {name}",
            {"selection": {"cs-user-agent|contains": [name, f"{name}/"]}, "condition": "selection"},
            "medium",
        )
    # 15: web shells by name, POST or GET with a command
    for name in SHELLS:
        rule(
            f"Web shell access {name}",
            {
                "selection": {"cs-uri-query|contains": f"/{name}"},
                "method": {"cs-method": ["POST", "GET"]},
                "condition": "selection and method",
            },
            "critical",
        )
    # 15: sensitive files, answered (not 404)
    for name in FILES:
        rule(
            f"Sensitive file requested {name}",
            {
                "selection": {"cs-uri-query|endswith": [name, name + "~"]},
                "filter": {"sc-status": [404, 403]},
                "condition": "selection and not filter",
            },
            "medium",
        )
    # 5: odd methods; 3: regular expressions; 2: numeric comparisons
    for method in ["TRACE", "TRACK", "DEBUG", "PROPFIND", "CONNECT"]:
        rule(
            f"Unusual HTTP method {method}",
            {"selection": {"cs-method": method}, "condition": "selection"},
            "low",
        )
    for i, pattern in enumerate(
        [
            r"(?i)(%27|')\s*(or|and)\s+\d+=\d+",
            r"(?i)/wp-(admin|login)\.php.*(action=|user=)",
            r"(?i)(\.\./){3,}",
        ]
    ):
        rule(
            f"Web regex {i + 1}",
            {"selection": {"cs-uri-query|re": pattern}, "condition": "selection"},
        )
    rule(
        "Very large response to an API client",
        {"selection": {"bytes_sent|gt": 50_000_000, "cs-method": "GET"}, "condition": "selection"},
        "low",
    )
    rule(
        "Admin API error burst source",
        {
            "selection": {"sc-status|gte": 500, "cs-uri-query|startswith": "/api/v1/admin"},
            "condition": "selection",
        },
        "medium",
    )
    return out


def main() -> None:
    folder = Path(__file__).parent / "sigma"
    folder.mkdir(exist_ok=True)
    docs = rules()
    assert len(docs) == 100, len(docs)
    text = "# written by python -m bench.sigma_rules; 100 Sigma rules on webserver logs\n"
    text += yaml.safe_dump_all(docs, sort_keys=False, width=100)
    (folder / "web-100.yml").write_text(text)


if __name__ == "__main__":
    main()
