# portico + the example Django site (examples/django), built from the repository root:
#
#   docker build -t portico-example .
#   docker run --rm -p 8000:8000 -p 9100:9100 portico-example
#
# BASE names the Debian 12 image both stages start from; a locally imported base works too:
#   podman build --build-arg BASE=localhost/debian:bookworm-slim -t portico-example .
# JOBS bounds the compiler's parallelism (ninja -j; 0 = ninja's default, one per CPU + 2).
ARG BASE=debian:bookworm-slim

############################################################################ build stage
FROM ${BASE} AS build
ARG JOBS=0
# The build dependencies of scripts/install-deps.sh, without its test tools. libgtest-dev is
# left out, so the unit tests are switched off below (-DPORTICO_TESTS=OFF). Nothing in the
# build needs Django (collectstatic runs in the runtime stage) nor nghttp2.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config \
      libssl-dev libsystemd-dev zlib1g-dev libpcre2-dev libcrypt-dev libpython3.11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release, without the unit tests (their find_package(GTest REQUIRED) needs libgtest-dev).
# libpython3.11.a is linked in (PORTICO_STATIC_LIBPYTHON, the default): the binary needs
# Python's standard library at run time, not libpython3.11.so.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPORTICO_TESTS=OFF \
 && if [ "$JOBS" -gt 0 ]; then ninja -C /build -j "$JOBS" portico; else ninja -C /build portico; fi \
 && strip /build/portico \
 && /build/portico --version

########################################################################## runtime stage
FROM ${BASE}
# Runtime libraries only. python3-django brings python3.11 (the standard library the embedded
# interpreter imports, libexpat1); python3-psycopg2 for DATABASE_URL=postgres://...,
# python3-django-redis for REDIS_URL (the cache and sessions shared by several replicas).
# libpython3.11 is not linked (see above) but kept for extension modules built against it.
# libjs-jquery: only Recommended by python3-django, but the admin's static/admin/js/vendor/
# jquery/jquery.js is a symlink into it; without it collectstatic fails (FileNotFoundError).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpython3.11 libssl3 libsystemd0 zlib1g libpcre2-8-0 libcrypt1 libexpat1 \
      python3-django libjs-jquery python3-psycopg2 python3-django-redis ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin portico \
 && mkdir -p /app /data \
 && chown portico:portico /data
COPY --from=build /build/portico /usr/local/bin/portico
# The site: code root-owned (read-only to the app); collectstatic's output owned by the app
# user, so setup.sh's collectstatic can refresh it (and a named volume mounted on
# /app/staticfiles is initialised from it, with that owner).
COPY --from=build /src/examples/django /app
RUN cd /app && python3 manage.py collectstatic --noinput \
 && chown -R portico:portico /app/staticfiles
# /data: a place for SQLite (DATABASE_URL=sqlite:////data/db.sqlite3) when no PostgreSQL is used.
VOLUME ["/data"]
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mysite.settings
USER portico:portico
# 8000: the site; 9100: /metrics, /status, /status.json, /health/live, /health/ready.
EXPOSE 8000 9100
# portico is PID 1 (it reaps children and handles TERM/INT/QUIT/HUP itself); TERM is a
# graceful stop within --graceful-timeout (30 s): give orchestrators a longer stop timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/portico", "--chdir", "/app", \
            "--bind", "0.0.0.0:8000", "-w", "auto", \
            "--metrics-bind", "0.0.0.0:9100", \
            "--access-logfile", "-", \
            "--static", "/static/=/app/staticfiles/"]
CMD ["mysite.wsgi:application"]
# Database preparation (migrate, seed, collectstatic, admin user) is a separate one-shot run:
#   docker run --rm --entrypoint /app/setup.sh -e DATABASE_URL=... portico-example
