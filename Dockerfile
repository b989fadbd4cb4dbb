FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamproc ./streamproc
COPY topics ./topics
COPY bench ./bench
RUN pip install --no-cache-dir '.[fast]' && useradd -r -u 10001 streamproc \
    && mkdir -p /var/lib/streamproc && chown streamproc /var/lib/streamproc
USER streamproc
WORKDIR /var/lib/streamproc
EXPOSE 9108
ENTRYPOINT ["streamproc"]
CMD ["run", "-c", "/etc/streamproc/streamproc.yaml", "--metrics-port", "9108"]
