# Sourced by the GPU call scripts: install the carried wheels (.whl/ and .whl2/, when the call carries them) into /tmp/site
# and put it and the repo on PYTHONPATH. Every carried wheel is pure Python (py3-none-any), so unpacking it is
# installing it (and needs no pip there). A call that carries no .whl keeps what an earlier call unpacked.
python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('/tmp/site') for w in glob.glob('.whl*/*.whl')]" || exit 4
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
