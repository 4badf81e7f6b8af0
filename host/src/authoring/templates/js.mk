# componentize-js 0.23.0 is the version known to work (package.json pins it). berth gives no
# wasi:http, hence -d http -d fetch-event.
COMPONENTIZE_JS ?= node_modules/.bin/componentize-js
SDK := $(BERTH_ROOT)/actions/sdk-js

toolchain: $(COMPONENTIZE_JS)
node_modules/.bin/componentize-js:
	npm install --no-audit --no-fund --silent

# componentize-js resolves imports inside the source's directory: build from a copy beside the SDK.
$(OUT): $(COMPONENTIZE_JS) app.js
	rm -rf build && mkdir build && cp app.js $(SDK)/berth.js build/
	$(COMPONENTIZE_JS) --wit $(WIT) -n family -d http -d fetch-event -o $(OUT).tmp build/app.js
	node $(SDK)/stamp.mjs $(OUT).tmp
	mv $(OUT).tmp $(OUT)

clean:
	rm -rf build node_modules $(OUT) $(OUT).tmp
