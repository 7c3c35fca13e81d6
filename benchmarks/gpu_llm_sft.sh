#!/usr/bin/env bash
# The GPU run of benchmarks/llm_sft.py on a lent CUDA machine (no network there): pure-Python/cp312 wheels that
# the machine lacks travel in gpu_wheels/ (pip download --no-deps ... trl datasets dill multiprocess xxhash
# fsspec pydantic pydantic-core annotated-types typing-inspection pandas python-dateutil tzdata pytz).
#   bash benchmarks/gpu_llm_sft.sh
set -euo pipefail
pip install -q --no-deps --no-index gpu_wheels/*.whl 2>&1 | grep -v -i warning | tail -3 || true
export PYTHONPATH="$PWD/src" HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, transformers, trl, peft, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)"
python benchmarks/llm_sft.py --hidden-size 2048 --layers 16 --vocab-size 128256 --seq-len 2048 \
  --batch-size 2 --grad-accum 4 --steps 10 --repeat-data 40
