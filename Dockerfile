# One image for every Conveyor service; compose picks the service with `command`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && useradd --system --no-create-home conveyor
USER conveyor
ENTRYPOINT ["conveyor"]
CMD ["gateway"]
