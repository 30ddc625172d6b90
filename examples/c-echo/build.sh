#!/bin/sh
# Builds echo.wasm, a WASI command, from echo.c with clang and wasi-libc.
# On Debian or Ubuntu: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
set -eu
cd "$(dirname "$0")"
${CC:-clang} --target=wasm32-wasi -O2 -Wall -Wextra -Werror \
	-Wl,--strip-all -o echo.wasm echo.c
echo "built $(pwd)/echo.wasm"
