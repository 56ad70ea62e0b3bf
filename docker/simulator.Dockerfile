# The activesci simulator as a container: `activesci simulate TASK ... --out /work/events.npz`.
# Build from the repository root: docker build -f docker/simulator.Dockerfile -t activesci-sim .
FROM python:3.11-slim
WORKDIR /opt/activesci
COPY pyproject.toml README.md ./
COPY activesci ./activesci
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir .
WORKDIR /work
ENTRYPOINT ["activesci", "simulate"]
