# One image for the api, worker, beat and flower services of docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml setup.cfg README.md worker.py beat_schedule.py ./
COPY invoicer ./invoicer
RUN pip install --no-cache-dir . && useradd --create-home invoicer && mkdir -p /data && chown invoicer /data
USER invoicer
ENV INVOICER_VAR_DIR=/data
EXPOSE 8000
CMD ["invoicer", "serve", "--host", "0.0.0.0", "--port", "8000"]
