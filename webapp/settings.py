"""Django settings for Tailboard: every value comes from the environment (see README)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

TAILBOARD_ENV = env_str("TAILBOARD_ENV", "development")
if TAILBOARD_ENV not in ("development", "production"):
    raise ImproperlyConfigured("TAILBOARD_ENV must be 'development' or 'production'")
PRODUCTION = TAILBOARD_ENV == "production"

INSECURE_SECRET_KEY = "django-insecure-tailboard-development-only"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else INSECURE_SECRET_KEY)
# Earlier keys, newest first: sessions and signatures made with them stay valid while they are
# listed (a rotation without signing everyone out); comma-separated.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
DEBUG = env_bool("DEBUG", not PRODUCTION)
# Raise again what a last-resort guard contains (webapp/streams/faults.py); on in the tests.
RAISE_CONTAINED_ERRORS = env_bool("RAISE_CONTAINED_ERRORS", False)
if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "TAILBOARD_ENV=production needs SECRET_KEY: at least 50 random characters, "
            "not the development default"
        )
    if len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("TAILBOARD_ENV=production needs a random SECRET_KEY: this "
                                   "one has fewer than 5 different characters")
    if DEBUG:
        raise ImproperlyConfigured("TAILBOARD_ENV=production refuses DEBUG=1")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webapp",
    "tailf",
    "feeds",
    "journal",
    "containers",
    "alerts",
    # Further source kinds: each is one app that registers its kind (docs/architecture.md).
    *env_list("TAILBOARD_EXTRA_APPS"),
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.security.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",  # must stay last (django-axes)
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Connections are kept DATABASE_CONN_MAX_AGE seconds and checked before reuse: the stream
# consumers' database calls (several per stream) all run in one thread of each Daphne, and a
# new connection per call was most of their cost. HTTP requests (a thread each under ASGI)
# still close theirs as they end (webapp/dbconnections.py).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL: readers never wait for the writer, and a commit is an append with no fsync of its
    # own (synchronous=NORMAL: durable at each checkpoint, never corrupt). The stream records
    # written at every start and end were most of Daphne's database time.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling: after LOGIN_FAILURE_LIMIT failed logins for one username from one address,
# that pair is refused (HTTP 429) for LOGIN_COOLOFF_SECONDS; a successful login resets the count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address counted is the client's as the TRUSTED_PROXY_COUNT reverse proxies in front saw
# it: the N-th X-Forwarded-For entry from the right; 0 ignores the header (webapp/clientaddr.py).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)
AXES_CLIENT_IP_CALLABLE = "webapp.clientaddr.request_client_address"

# Sign-in with the company directory (docs/auth.md). LDAP: with LDAP_SERVER_URI the password
# form checks the directory (django-auth-ldap) before local passwords; at every sign-in the
# user's Django groups become the directory groups that exist as Django groups.
LDAP_SERVER_URI = env_str("LDAP_SERVER_URI", "")
# Seconds to connect to and to wait for each answer from the directory: a server that hangs
# fails the sign-in with a clear message instead of holding the request.
LDAP_TIMEOUT = env_int("LDAP_TIMEOUT", 5, minimum=1, maximum=120)
if LDAP_SERVER_URI:
    try:
        import ldap
        from django_auth_ldap import config as ldap_config
    except ImportError as _error:
        raise ImproperlyConfigured(
            f"LDAP_SERVER_URI is set but {_error.name} is not installed: "
            "pip install -r requirements-native.txt (docs/auth.md)") from None

    for _name in ("LDAP_USER_SEARCH", "LDAP_GROUP_SEARCH"):
        if not env_str(_name):
            raise ImproperlyConfigured(f"LDAP_SERVER_URI is set: {_name} (a base DN) is needed")
    _group_types = ("GroupOfNames", "GroupOfUniqueNames", "PosixGroup", "ActiveDirectory",
                    "NestedGroupOfNames", "NestedActiveDirectory")
    _group_type = env_str("LDAP_GROUP_TYPE", "GroupOfNames")
    if _group_type not in _group_types:
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE={env_str('LDAP_GROUP_TYPE')!r} is not a group type; use one of "
            "GroupOfNames, GroupOfUniqueNames, PosixGroup, ActiveDirectory, "
            "NestedGroupOfNames, NestedActiveDirectory")
    AUTH_LDAP_SERVER_URI = LDAP_SERVER_URI
    AUTH_LDAP_BIND_DN = env_str("LDAP_BIND_DN", "")
    AUTH_LDAP_BIND_PASSWORD = env_str("LDAP_BIND_PASSWORD", "")
    AUTH_LDAP_USER_SEARCH = ldap_config.LDAPSearch(
        env_str("LDAP_USER_SEARCH"), ldap.SCOPE_SUBTREE,
        env_str("LDAP_USER_FILTER", "(uid=%(user)s)"))
    AUTH_LDAP_GROUP_SEARCH = ldap_config.LDAPSearch(
        env_str("LDAP_GROUP_SEARCH"), ldap.SCOPE_SUBTREE,
        env_str("LDAP_GROUP_FILTER", "(objectClass=groupOfNames)"))
    AUTH_LDAP_GROUP_TYPE = getattr(ldap_config, _group_type + "Type")()
    AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    AUTH_LDAP_START_TLS = env_bool("LDAP_START_TLS", False)
    AUTH_LDAP_CONNECTION_OPTIONS = {ldap.OPT_NETWORK_TIMEOUT: LDAP_TIMEOUT,
                                    ldap.OPT_TIMEOUT: LDAP_TIMEOUT, ldap.OPT_REFERRALS: 0}
    # Only members of LDAP_REQUIRE_GROUP, and no member of LDAP_DENY_GROUP, may sign in (DNs).
    AUTH_LDAP_REQUIRE_GROUP = env_str("LDAP_REQUIRE_GROUP") or None
    AUTH_LDAP_DENY_GROUP = env_str("LDAP_DENY_GROUP") or None
    AUTHENTICATION_BACKENDS.insert(1, "webapp.signin.ldap.DirectoryBackend")

# OpenID Connect (docs/auth.md): with OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET the
# login page offers "Sign in with OIDC_PROVIDER_NAME" (authorization code flow with PKCE,
# mozilla-django-oidc); endpoints come from the issuer's discovery document.
OIDC_ISSUER = env_str("OIDC_ISSUER", "").rstrip("/")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
# Seconds to wait for each answer from the provider (discovery, token, keys, userinfo).
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10, minimum=1, maximum=120)
# Seconds between refreshes (refresh token) of a signed-in session that has streams open: the
# groups claim is read again, and a refresh the provider refuses signs that session out. 0: off.
OIDC_REFRESH_SECONDS = env_int("OIDC_REFRESH_SECONDS", 300, minimum=0, maximum=86400)
if OIDC_ISSUER:
    for _name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if not env_str(_name):
            raise ImproperlyConfigured(f"OIDC_ISSUER is set: {_name} is needed too")
    if not OIDC_ISSUER.startswith(("https://", "http://127.", "http://localhost")):
        raise ImproperlyConfigured("OIDC_ISSUER must be an https:// URL")
    OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
    OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
    OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
    OIDC_USE_PKCE = True
    OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
    OIDC_USE_NONCE = True
    OIDC_STORE_ID_TOKEN = True  # the id_token_hint of the provider's sign-out
    OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
    AUTHENTICATION_BACKENDS.insert(1, "webapp.signin.oidc.ProviderBackend")
    AXES_WHITELIST_CALLABLE = "webapp.signin.oidc.is_provider_callback"

# Local passwords (Django's own): AUTH_PASSWORD=0 turns them off once a directory signs people
# in; the superusers named in AUTH_EMERGENCY_SUPERUSERS (made with `createsuperuser`) still
# sign in with theirs, from /accounts/login/?password=1 (docs/auth.md).
AUTH_PASSWORD = env_bool("AUTH_PASSWORD", True)
AUTH_EMERGENCY_SUPERUSERS = env_list("AUTH_EMERGENCY_SUPERUSERS")
if not AUTH_PASSWORD:
    if not (OIDC_ISSUER or LDAP_SERVER_URI):
        raise ImproperlyConfigured("AUTH_PASSWORD=0 leaves no way to sign in: set OIDC_ISSUER "
                                   "or LDAP_SERVER_URI too")
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
    if AUTH_EMERGENCY_SUPERUSERS:
        AUTHENTICATION_BACKENDS.append("webapp.signin.emergency.EmergencyBackend")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# English and Simplified Chinese, chosen from the browser's Accept-Language by LocaleMiddleware
# (zh-CN, zh-SG and zh map to zh-hans). Translations live in locale/; the compiled .mo files
# are committed, so running the app needs no gettext tools.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# /healthz stays reachable over plain HTTP for container and load-balancer health checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (webapp.security): scripts and styles only from our own origin, no
# inline script, no eval; WebSockets to our own host ('self' covers ws:/wss: in CSP 3).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if OIDC_ISSUER:
    # The sign-out form's redirect to the provider's end_session_endpoint is a form action.
    CONTENT_SECURITY_POLICY["form-action"].append("/".join(OIDC_ISSUER.split("/")[:3]))

# Redis: one URL feeds the Celery broker, its result store, the channel layer and the leases.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Or Sentinel: with REDIS_SENTINELS (host:port,...) and REDIS_SENTINEL_MASTER every client
# finds the master through the sentinels, and REDIS_URL gives only the database number and
# the master's credentials (webapp/redisconf.py).
REDIS_SENTINELS = env_list("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "")
REDIS_SENTINEL_PASSWORD = env_str("REDIS_SENTINEL_PASSWORD", "")
# The most connections one process opens to Redis per pool (the channel layer's, the leases').
# Each long poll waiting for its stream holds one (a blocking pop), so this bounds the long-poll
# viewers one Daphne process serves at once; redis-py's own default, 100, failed poll 101.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 10000, minimum=10)
try:
    from webapp import redisconf

    REDIS_PLACE = redisconf.place(REDIS_URL, ",".join(REDIS_SENTINELS), REDIS_SENTINEL_MASTER,
                                  REDIS_SENTINEL_PASSWORD)
except ValueError as _error:
    raise ImproperlyConfigured(str(_error)) from None

# Stock channels-redis in Daphne and in the tasks instead of Tailboard's layer, which reaches
# into redis-py and channels-redis (webapp/streams/internals.py): slower, and a message can be
# lost when a viewer's receive is cancelled (channels_redis #366).
CHANNEL_LAYER_STOCK = env_bool("CHANNEL_LAYER_STOCK", False)
CHANNEL_LAYERS = {
    "default": {
        # channels-redis, read by one task per process so that no message is lost when a
        # consumer's receive is cancelled (channels_redis #366; webapp/streams/weblayer.py).
        "BACKEND": ("channels_redis.core.RedisChannelLayer" if CHANNEL_LAYER_STOCK
                    else "webapp.streams.weblayer.ReaderLayer"),
        "CONFIG": {
            # socket_timeout None: redis-py 8 would otherwise end idle receives after 5 s
            # (channels_redis #422).
            # driver_info None: no CLIENT SETINFO (and no package metadata lookup) per new
            # connection; each stream task opens its own.
            "hosts": [REDIS_PLACE.channel_host(socket_timeout=None, driver_info=None,
                                               max_connections=REDIS_MAX_CONNECTIONS)],
            "capacity": env_int("CHANNEL_CAPACITY", 5000, minimum=10),
            "expiry": 60,
            "prefix": "tailboard:asgi",
        },
    }
}

# Streams: one WebSocket connection is one Celery task on the source's queue.
STREAM_MAX_PER_USER = env_int("STREAM_MAX_PER_USER", 8, minimum=1)
STREAM_MAX_TOTAL = env_int("STREAM_MAX_TOTAL", 200, minimum=1)
STREAM_MAX_SECONDS = env_int("STREAM_MAX_SECONDS", 12 * 3600, minimum=10)
STREAM_QUEUE_EXPIRES = env_int("STREAM_QUEUE_EXPIRES", 3600, minimum=5)
STREAM_LEASE_SECONDS = env_int("STREAM_LEASE_SECONDS", 20, minimum=3, maximum=30)
STREAM_WINDOW_FRAMES = env_int("STREAM_WINDOW_FRAMES", 8, minimum=1, maximum=64)
STREAM_BUFFER_LINES = env_int("STREAM_BUFFER_LINES", 20000, minimum=100)
STREAM_MAX_LAG_BYTES = env_int("STREAM_MAX_LAG_BYTES", 64 * 1024 * 1024, minimum=65536)
# Bytes Daphne may hold for one viewer that does not read its socket: above the first, its
# credit is held back (the lag stays on disk); above the second, the stream ends with 4408.
STREAM_SEND_BUFFER_BYTES = env_int("STREAM_SEND_BUFFER_BYTES", 4 * 1024 * 1024, minimum=65536)
STREAM_MAX_BUFFER_BYTES = env_int("STREAM_MAX_BUFFER_BYTES", 48 * 1024 * 1024,
                                  minimum=1024 * 1024, maximum=64 * 1024 * 1024)
STREAM_HEARTBEAT_SECONDS = 2
STREAM_WORKER_LOST_SECONDS = env_int("STREAM_WORKER_LOST_SECONDS", 7, minimum=3)
# A revoked task ends in order on SIGUSR1; one whose end is not recorded this long after is
# revoked again with SIGTERM (its process ends). Keep it well under the 2 s after Stop of
# docs/protocol.md.
STREAM_REVOKE_GRACE_MS = env_int("STREAM_REVOKE_GRACE_MS", 1000, minimum=100, maximum=1500)
# How often a task reads its lease (only a vanished consumer needs it: Stop and close signal
# the task); capped so that STREAM_LEASE_SECONDS + this stays within the 30 s of
# docs/reliability.md.
STREAM_LEASE_CHECK_SECONDS = env_int("STREAM_LEASE_CHECK_SECONDS", 5, minimum=1, maximum=27)
# The consumer passes the viewer's acks on to the task once per this many frames (capped at
# half the window), not once per frame: credit is cumulative.
STREAM_ACK_EVERY_FRAMES = env_int("STREAM_ACK_EVERY_FRAMES", 4, minimum=1, maximum=32)
TAIL_MAX_BACKLOG = 5000
TAIL_DEFAULT_BACKLOG = 50
TAIL_MAX_LINE_BYTES = 64 * 1024
# Log roots: a log source's path must lie under one (as given, and as resolved at every open).
LOG_ROOTS = [root for root in env_str("LOG_ROOTS", "/var/log").split(":") if root]
for _root in LOG_ROOTS:  # noqa: B007
    if not os.path.isabs(_root):
        raise ImproperlyConfigured(f"LOG_ROOTS entries must be absolute paths, got {_root!r}")
TAILF_ROTATE_WAIT = env_int("TAILF_ROTATE_WAIT", 5, minimum=0, maximum=300)
TAILF_MAX_FILES = env_int("TAILF_MAX_FILES", 64, minimum=1, maximum=1024)
SEARCH_MAX_MATCHES = env_int("SEARCH_MAX_MATCHES", 10000, minimum=1)
# History searches: at most this many running at once per user (4429 beyond), each ending
# with a notice after this many seconds of scanning (a slow RE2 pattern holds a worker).
SEARCH_MAX_PER_USER = env_int("SEARCH_MAX_PER_USER", 2, minimum=1)
SEARCH_MAX_SECONDS = env_int("SEARCH_MAX_SECONDS", 300, minimum=1)
FEED_DEFAULT_ENTRIES = 10
FEED_MAX_ENTRIES = 100

FEED_FETCH_TIMEOUT = env_int("FEED_FETCH_TIMEOUT", 15, minimum=1)
# Internal hosts and networks a feed may reach (SSRF rule, feeds/reach.py): empty by default,
# so feeds reach public addresses only. Never decided by DNS. Checked when the feeds app
# loads (feeds/apps.py): a bad entry stops startup.
FEED_INTERNAL_ALLOW = env_list("FEED_INTERNAL_ALLOW")

# Alert rules (docs/alerts.md): each enabled rule is one task on `<source queue>.alerts`,
# held by a lease in Redis; a beat-scheduled supervisor restarts rules whose lease lapsed.
ALERT_LEASE_SECONDS = env_int("ALERT_LEASE_SECONDS", 30, minimum=3, maximum=40)
ALERT_SUPERVISE_SECONDS = env_int("ALERT_SUPERVISE_SECONDS", 15, minimum=1, maximum=20)
ALERT_SUPERVISOR_QUEUE = env_str("ALERT_SUPERVISOR_QUEUE", "alerts")
ALERT_DELIVERY_ATTEMPTS = env_int("ALERT_DELIVERY_ATTEMPTS", 4, minimum=1, maximum=10)
ALERT_DELIVERY_TIMEOUT = env_int("ALERT_DELIVERY_TIMEOUT", 15, minimum=1, maximum=120)
# Internal hosts and networks alert destinations may reach (the feeds' SSRF rule): empty
# by default, so webhooks, SMTP relays and push servers must be public. Checked when the
# alerts app loads (alerts/apps.py).
ALERT_INTERNAL_ALLOW = env_list("ALERT_INTERNAL_ALLOW")

# Tokens that let scripts read /healthz details and /metrics without a staff session.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN", "")
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
FEED_MAX_BYTES = 5 * 1024 * 1024

CELERY_BROKER_URL = REDIS_PLACE.celery_url()
CELERY_RESULT_BACKEND = REDIS_PLACE.celery_url()
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = REDIS_PLACE.celery_transport_options()
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = False
# No task's STARTED state is read (stream and rule tasks say so themselves: track_started=False).
CELERY_TASK_TRACK_STARTED = False
CELERY_TASK_TIME_LIMIT = STREAM_MAX_SECONDS + 120
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_WORKER_POOL = "prefork"
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 16, minimum=1)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery closes a pool process's database connection around every task unless told to reuse
# it; a stream task starts with `close_old_connections()`, which applies CONN_MAX_AGE and
# the health check instead.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_DEFAULT_QUEUE = "tailf"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost Redis (a restart, a Sentinel failover) tries again every 2 s at most,
# not 2, 4, 6, … s apart, so streams run again soon after Redis answers (webapp/brokerlink.py).
CELERY_WORKER_CONSUMER = "webapp.brokerlink:Consumer"
CELERY_BEAT_SCHEDULE = {"alerts-supervise": {
    "task": "alerts.supervise", "schedule": float(ALERT_SUPERVISE_SECONDS),
    "options": {"queue": ALERT_SUPERVISOR_QUEUE, "expires": float(ALERT_SUPERVISE_SECONDS)}}}
# No ack emulation: a stream task is acknowledged as its process takes it (never acks_late),
# and a message taken but not yet started when its worker died would only have come back
# after the visibility timeout (hours), long after its viewer gave up. Emulating acks cost
# the worker's main process two blocking Redis transactions per task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"ack_emulation": False,
                                   **REDIS_PLACE.celery_transport_options()}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "tailboard": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
