# Thin wrapper around meson. Every target installs missing Debian packages
# first (scripts/deps.sh), so a fresh Debian 12 machine needs nothing else.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
MESON_TEST  = meson test --print-errorlogs --num-processes 2

.PHONY: all deps check test asan tsan bench demo demo-dirty conformance clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=all

$(TSAN_BUILD)/build.ninja:
	CC=clang meson setup $(TSAN_BUILD) --buildtype=debugoptimized -Db_sanitize=thread \
		-Db_lundef=false

# The whole suite: normal build, then ASan+UBSan, then the stress tests under
# TSan; ends with one line "N passed, N failed, N skipped".
check: deps $(BUILD)/build.ninja $(ASAN_BUILD)/build.ninja $(TSAN_BUILD)/build.ninja
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)

test: check

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) && $(MESON_TEST) -C $(ASAN_BUILD)

tsan: deps $(TSAN_BUILD)/build.ninja
	ninja -C $(TSAN_BUILD) && $(MESON_TEST) -C $(TSAN_BUILD) --suite stress

bench: all
	@scripts/run-bench.sh $(BUILD) $(if $(JSON),--json)

# The kernel's iommufd selftest under the shim; UPDATE=1 rewrites the expected list.
conformance: all
	tests/conformance/run.sh --shim $(BUILD)/src/uapi/shim/libuiommu-preload.so \
		--out $(BUILD)/conformance $(if $(UPDATE),--update-expected)

# The main job: a guest and its DMA device live-migrate to a receiver on loopback.
demo: all
	$(BUILD)/tools/uiommu migrate demo

# The emulated IOMMU's dirty tracking alone (the demo before live migration).
demo-dirty: all
	$(BUILD)/tools/uiommu dirty demo

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
