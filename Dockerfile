# Tailboard image: Daphne by default; the same image runs the Celery workers
# (see docker-compose.yml and docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=webapp.settings \
    STATIC_ROOT=/app/staticfiles

RUN groupadd --system --gid 10001 tailboard \
 && useradd --system --uid 10001 --gid tailboard --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tailboard

WORKDIR /app

COPY requirements.txt requirements-native.txt ./
# python-ldap (LDAP sign-in) builds from source against OpenLDAP's and Cyrus SASL's headers,
# systemd-python (the journal reader) against libsystemd's.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libldap-dev libsasl2-dev \
        libsystemd-dev pkg-config \
 && rm -rf /var/lib/apt/lists/* \
 && pip install -r requirements.txt -r requirements-native.txt

# The code and the collected static files stay owned by root: the app user can read, not change them.
COPY . .

# collectstatic imports the production settings, which need a SECRET_KEY: a random one that
# lives only for this RUN step and is not stored in the image.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    TAILBOARD_ENV=production \
    python manage.py collectstatic --noinput

USER 10001:10001

EXPOSE 8000

# /healthz through Django: sent with the first ALLOWED_HOSTS entry as Host, and marked as
# HTTPS so SECURE_SSL_REDIRECT does not redirect it. A 503 makes urlopen raise: unhealthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; r.urlopen(r.Request('http://127.0.0.1:8000/healthz', headers={'Host': h, 'X-Forwarded-Proto': 'https'}), timeout=8)"]

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "webapp.asgi:application"]
