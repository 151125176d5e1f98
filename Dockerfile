# traysvc image: web (gunicorn), worker and beat all run from it; see docker-compose.yml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Static files are baked into the image. Importing the settings with DEBUG=0 needs secrets:
# these throwaway values exist only for this RUN, never in the image's environment.
RUN SECRET_KEY=build-time-only-not-a-secret \
    TRAYSVC_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app --no-create-home traysvc \
 && mkdir -p var \
 && chown -R traysvc:traysvc var

# var/ (static files, the beat schedule) is the only place the app writes.
USER traysvc
EXPOSE 8000
CMD ["gunicorn", "traysvc.wsgi:application", "--bind=0.0.0.0:8000", "--workers=4", "--threads=4", \
     "--no-control-socket", "--access-logfile=-"]
