# JupyterLab with activesci and its notebooks, for machines with an image registry.
# Build and run from the repository root:
#   docker build -f docker/notebook.Dockerfile -t activesci-notebook .
#   docker run --rm -p 8888:8888 activesci-notebook     # then open the printed http://127.0.0.1 URL
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/activesci
# torch first, CPU build: a bare "torch" requirement would pull gigabytes of CUDA wheels
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY activesci ./activesci
RUN pip install ".[dev,dask]" "jupyterlab>=4.0"
RUN useradd --create-home --uid 1000 jovyan
COPY --chown=jovyan:jovyan notebooks /home/jovyan/notebooks
USER jovyan
WORKDIR /home/jovyan/notebooks
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"]
