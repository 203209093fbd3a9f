#!/bin/sh
# Runs "$@" where /dev/kvm can be opened, else skips (exit 77), as the unit
# tests that need KVM do. Checked when the test runs, not when meson
# configures: a build made on a KVM host and tested without it skips.
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm cannot be opened"
	exit 77
fi
exec "$@"
