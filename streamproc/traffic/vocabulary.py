"""The words generated traffic is made of: names, addresses, clients, endpoints, hosts, projects,
tickets and the figures of a normal business day.

Only data lives here. What a detector counts (keys, thresholds, windows) is not vocabulary: the
family generators read that from the contracts and the detectors' defaults.
"""

from __future__ import annotations

# -- people and accounts -------------------------------------------------------------------

FIRST_NAMES = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yusuf",
    "zoe",
    "amara",
    "bjorn",
    "chen",
    "diego",
    "fatima",
    "hiro",
    "ingrid",
    "kofi",
    "lucia",
    "mateo",
    "nadia",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tariq",
    "uma",
    "wei",
    "xavier",
    "yara",
    "lena",
    "marco",
    "sofia",
    "arjun",
    "emma",
    "liam",
    "noah",
)
LAST_NAMES = (
    "smith",
    "jones",
    "garcia",
    "muller",
    "rossi",
    "tanaka",
    "kim",
    "nguyen",
    "silva",
    "kowalski",
    "novak",
    "obrien",
    "dubois",
    "jansen",
    "larsen",
    "patel",
    "cohen",
    "ali",
    "schmidt",
    "moreau",
    "costa",
    "ivanova",
    "haddad",
    "okafor",
    "lindqvist",
    "walsh",
    "fischer",
    "romero",
    "sato",
    "park",
    "singh",
    "martin",
    "bauer",
    "weber",
    "hughes",
)
SERVICE_ACCOUNTS = (
    "svc-backup",
    "svc-deploy",
    "svc-monitoring",
    "jenkins",
    "ansible",
    "svc-reporting",
    "gitlab-runner",
    "svc-etl",
)
SPRAY_NAMES = (
    "admin",
    "administrator",
    "root",
    "test",
    "guest",
    "oracle",
    "postgres",
    "user",
    "support",
    "info",
    "sales",
    "demo",
    "ubuntu",
    "ftp",
    "backup",
    "webmaster",
    "operator",
    "helpdesk",
    "training",
    "scanner",
)

# -- clients (user agents) -----------------------------------------------------------------

BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.2277.128",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.6261.64 Mobile Safari/537.36",
)
CLIENT_UAS = (
    "OpenSSH_9.6p1 Ubuntu-3ubuntu13",
    "OpenSSH_8.9p1",
    "GlobalProtect/6.1.1-19",
    "OpenVPN/2.6.8",
    "Okta Verify/9.12.0 (iOS 17.3)",
    "PuTTY_Release_0.80",
)
API_UAS = BROWSER_UAS + (
    "okhttp/4.12.0",
    "ShopApp/5.3.1 (iOS 17.3; iPhone15,2)",
    "ShopApp/5.3.0 (Android 14)",
    "python-requests/2.31.0",
    "axios/1.6.7",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Prometheus/2.50.1",
    "kube-probe/1.29",
)
ATTACK_UAS = (
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 zgrab/0.x",
    "hydra",
    "libssh2_1.10.0",
    "Mozilla/5.0 (Windows NT 6.1; rv:60.0) Gecko/20100101 Firefox/60.0",
)
SQLMAP_UA = "sqlmap/1.8.2#stable (https://sqlmap.org)"
SCRAPER_UAS = ("python-requests/2.31.0", "Go-http-client/2.0", "Scrapy/2.11.0")

# -- where logins come from ----------------------------------------------------------------

# (country, weight) for users; attackers come from elsewhere.
USER_COUNTRIES = (
    ("US", 34),
    ("DE", 12),
    ("GB", 10),
    ("FR", 7),
    ("IN", 8),
    ("NL", 5),
    ("CA", 5),
    ("BR", 4),
    ("JP", 4),
    ("ES", 3),
    ("SE", 2),
    ("PL", 3),
    ("AU", 3),
)
ATTACK_COUNTRIES = ("RU", "CN", "KP", "IR", "VN", "NG", "UA", "RO", "BY", "ID")
# First octets reserved for attackers: background addresses never start with these.
ATTACKER_OCTETS = (45, 91, 103, 185, 193, 194)
USER_OCTETS = (24, 31, 62, 73, 77, 81, 86, 98, 109, 151, 172, 176, 188, 201, 213, 217)
CLIENT_OCTETS = (3, 13, 34, 52, 66, 68, 71, 84, 88, 99, 104, 142, 162, 174, 203, 209)
# Services a user signs in to (sso is the most common, so it appears three times); attackers
# go for the ones exposed to the internet.
LOGIN_SERVICES = ("sso", "vpn", "ssh", "sso", "sso", "webmail")
ATTACKED_SERVICES = ("ssh", "vpn", "sso", "webmail")

# -- the shop's API ------------------------------------------------------------------------

API_ROUTES = (  # (method weights, template); {id} {n} {q} filled per request
    ("GET", "/api/v1/products?category={cat}&page={n}&limit=50", 14),
    ("GET", "/api/v1/products/{id}", 16),
    ("GET", "/api/v1/search?q={q}&sort=relevance", 8),
    ("GET", "/api/v1/users/{id}/orders?status=open", 6),
    ("POST", "/api/v1/orders", 5),
    ("GET", "/api/v1/orders/{id}", 6),
    ("PUT", "/api/v1/cart/{id}", 5),
    ("DELETE", "/api/v1/cart/{id}/items/{n}", 2),
    ("POST", "/api/v1/auth/token", 4),
    ("GET", "/api/v2/recommendations?user_id={id}&limit=12", 5),
    ("GET", "/health", 6),
    ("GET", "/static/js/app.3f9c2d1e.js", 6),
    ("GET", "/static/css/main.8a1b7c44.css", 4),
    ("GET", "/api/v1/inventory?sku=SKU-{id}&warehouse=ams-{n}", 3),
    ("POST", "/api/v1/payments/intent", 2),
    ("GET", "/api/v1/orders?created_after=2026-02-01&page={n}", 2),
    ("PATCH", "/api/v1/users/{id}/preferences", 2),
    ("GET", "/favicon.ico", 2),
)
PRODUCT_CATEGORIES = (
    "shoes",
    "jackets",
    "electronics",
    "books",
    "garden",
    "toys",
    "kitchen",
    "sports",
)
SEARCH_QUERIES = (
    "running+shoes",
    "usb-c+cable",
    "winter+jacket",
    "coffee+grinder",
    "lego",
    "noise+cancelling+headphones",
    "yoga+mat",
    "desk+lamp",
    "gift+card",
    "tent",
)
HTTP_STATUSES = (
    (200, 820),
    (201, 40),
    (204, 25),
    (301, 8),
    (304, 30),
    (400, 15),
    (401, 12),
    (403, 6),
    (404, 30),
    (409, 2),
    (422, 4),
    (429, 2),
    (500, 3),
    (502, 2),
    (503, 1),
)

SQLI_PAYLOADS = (  # one request per sql_injection incident, in the encodings scanners really use
    "/api/v1/products?id=1' OR '1'='1",
    "/api/v1/search?q=%27%20UNION%20SELECT%20username%2Cpassword%20FROM%20users--",
    "/api/v1/users?id=1;DROP TABLE users--",
    "/api/v1/products/12?ref=1 AND SLEEP(5)",
    "/login?username=admin'--&password=x",
    "/api/v1/orders?id=1%2527%2520OR%25201%253D1",
    "/news?id=-1+UNION+ALL+SELECT+NULL,NULL,table_name+FROM+information_schema.tables",
    "/api/v1/report?from=2026-01-01';WAITFOR DELAY '0:0:5'--",
    "/item.php?id=1 AND extractvalue(1,concat(0x7e,(SELECT version())))",
    "/api/v1/products?category=shoes'/**/OR/**/1=1#",
    "/api/v1/search?q=1'+AND+(SELECT+1+FROM+pg_sleep(5))--",
    "/api/v1/users/5?sort=(CASE WHEN (1=1) THEN name ELSE id END);SELECT BENCHMARK(5000000,MD5(1))",
)

# -- hosts ---------------------------------------------------------------------------------

HOST_ROLES = (
    ("web", 10),
    ("api", 8),
    ("worker", 6),
    ("db", 3),
    ("cache", 3),
    ("queue", 2),
    ("search", 2),
    ("batch", 2),
)
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1", "eu-central-1")
HOST_ENVS = (("prod", 6), ("staging", 2), ("dev", 1))

# -- CI/CD ---------------------------------------------------------------------------------

PROJECTS = (
    "payments-api",
    "checkout-web",
    "auth-service",
    "inventory",
    "mobile-app",
    "data-pipeline",
    "search",
    "notifications",
    "billing",
    "admin-portal",
    "recommendations",
    "shipping",
    "gateway",
    "analytics",
    "infra-terraform",
)
BRANCH_FEATURES = (
    "add-retry-backoff",
    "fix-null-currency",
    "upgrade-postgres-16",
    "new-checkout-flow",
    "rate-limit-tuning",
    "dark-mode",
    "pci-audit-fixes",
    "cache-warmup",
    "sso-saml",
    "refactor-orders",
)
FAIL_REASONS = (
    "unit tests failed: 3 of 812",
    "integration test timeout after 600s",
    "lint: 14 errors",
    "docker build failed: no space left on device",
    "dependency resolution failed",
    "coverage 71% below 80% gate",
    "e2e: checkout.spec.ts flaky failure",
    "migration check failed",
)
RELEASE_NOTES = (
    "Fix currency rounding on refunds",
    "Enable new checkout flow for 10%",
    "Upgrade to Python 3.12",
    "Add retry with backoff to payment provider calls",
    "Reduce p99 latency of search by caching facets",
    "Security patches",
    "Rotate signing keys",
    "Add SAML SSO for enterprise customers",
)
DEPLOY_BOTS = ("svc-deploy", "argo-cd")

# -- support tickets -----------------------------------------------------------------------

# (priority, weight): most tickets are normal, few urgent.
TICKET_PRIORITIES = (("urgent", 5), ("high", 20), ("normal", 55), ("low", 20))
TICKET_CATEGORIES = (
    "billing",
    "technical",
    "account",
    "shipping",
    "feature-request",
    "bug",
    "integration",
)
TICKET_SUBJECTS = {
    "billing": (
        "Charged twice for order",
        "Invoice shows wrong VAT number",
        "Refund not received after 10 days",
        "Cannot update credit card",
    ),
    "technical": (
        "API returns 502 intermittently",
        "Webhook deliveries delayed",
        "Dashboard does not load in Safari",
        "Export to CSV times out",
    ),
    "account": (
        "Locked out after password reset",
        "Cannot enable 2FA",
        "Please delete my account (GDPR)",
        "SSO login loops back to sign-in",
    ),
    "shipping": (
        "Package marked delivered but not received",
        "Wrong item shipped",
        "Tracking number not working",
    ),
    "feature-request": ("Request: export to Parquet", "Request: Slack integration for alerts"),
    "bug": ("Search ignores filters on mobile", "Totals wrong when coupon applied"),
    "integration": ("Shopify sync stopped", "Salesforce connector auth error"),
}
SUPPORT_AGENTS = ("maria.lopez", "tom.becker", "aiko.yamada", "sam.okoro", "lisa.berg", "raj.mehta")
TICKET_RESOLUTIONS = (
    "Refund issued",
    "Fixed in release 2.14.3",
    "Configuration corrected",
    "Password reset link re-sent",
    "Replacement shipped",
    "Explained expected behaviour",
    "Duplicate of earlier ticket",
    "Workaround provided",
)
CUSTOMER_COMPANIES = (
    "acme-corp",
    "globex",
    "initech",
    "umbrella-health",
    "stark-retail",
    "wayne-logistics",
    "hooli",
    "vandelay-imports",
    "soylent",
    "tyrell",
)
STARTED_WHEN = ("today", "yesterday", "after the last update", "this morning")

# -- business KPIs -------------------------------------------------------------------------

DAILY_TARGET = 100_000.0  # revenue target the daily reports carry
CURRENCY = "USD"
