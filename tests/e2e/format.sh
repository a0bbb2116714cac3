#!/bin/bash
# The sources follow the repository's .clang-format (make format).
. "$(dirname "$0")/common"
expect format 0 -- make --no-print-directory -s format-check
finish
