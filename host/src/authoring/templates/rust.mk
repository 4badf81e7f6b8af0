CARGO ?= cargo
CARGO_TARGET_DIR ?= target
export CARGO_TARGET_DIR

toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# The Rust SDK writes the berth:contract section itself.
$(OUT): toolchain Cargo.toml src/lib.rs
	$(CARGO) build --release --target wasm32-wasip2
	cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/berth_action_{{crate}}.wasm $(OUT)

clean:
	rm -rf target $(OUT)
