# llmcap dashboard: docker build -t llmcap . && docker run --rm -p 8501:8501 llmcap
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/llmcap

# The build maps core/ -> llmcap, app/ -> llmcap.app and catalogs/ -> llmcap/catalogs, so all three are needed
# before the (editable, app-extra) install; it is held to the exact pins of requirements.lock.
COPY pyproject.toml requirements.lock README.md ./
COPY core ./core
COPY app ./app
COPY catalogs ./catalogs
COPY .streamlit ./.streamlit
RUN pip install --no-cache-dir "pip==$(sed -n 's/^pip==//p' requirements.lock)" \
 && pip install --no-cache-dir -c requirements.lock --build-constraint requirements.lock -e '.[app]'

RUN groupadd --gid 10001 llmcap && useradd --uid 10001 --gid 10001 --create-home llmcap
USER 10001:10001

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen(\"http://127.0.0.1:8501/_stcore/health\", timeout=4).status != 200)"]
ENTRYPOINT ["llmcap", "serve", "--host", "0.0.0.0", "--port", "8501"]
