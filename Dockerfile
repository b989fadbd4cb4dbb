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
# Metrics on every interface of the container (streamproc's default is 127.0.0.1, which a
# published port cannot reach); publish the port on a chosen host address only.
CMD ["run", "-c", "/etc/streamproc/streamproc.yaml", "--metrics-port", "9108", "--metrics-host", "0.0.0.0"]
