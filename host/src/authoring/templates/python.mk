# componentize-py 0.25.1 is the version known to work; it goes in .venv unless given.
COMPONENTIZE_PY ?= .venv/bin/componentize-py
SDK := $(BERTH_ROOT)/actions/sdk-python

toolchain: $(COMPONENTIZE_PY)
.venv/bin/componentize-py:
	python3 -m venv .venv
	.venv/bin/pip install --quiet componentize-py==0.25.1

$(OUT): $(COMPONENTIZE_PY) app.py
	$(COMPONENTIZE_PY) -d $(WIT) -w family componentize app -p . -p $(SDK) -o $(OUT).tmp
	python3 $(SDK)/stamp.py $(OUT).tmp
	mv $(OUT).tmp $(OUT)

clean:
	rm -rf .venv $(OUT) $(OUT).tmp
