#!/usr/bin/env bash
# The pathfinder(1) man page, written from the tool's own --help texts so
# that it says what the code does: man.sh PATHFINDER VERSION > pathfinder.1
set -euo pipefail
tool=$1 version=$2

# roff-safe text: backslashes doubled, a leading . or ' escaped
esc() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }

commands=$("$tool" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')

cat <<EOT
.TH PATHFINDER 1 "" "pathfinder $version" "User Commands"
.SH NAME
pathfinder \\- probe the error landscapes of neural networks with (shifted) L2 regularization
.SH SYNOPSIS
.B pathfinder
.I COMMAND
[\\fIOPTIONS\\fR] [\\fIARGS\\fR]
.SH DESCRIPTION
pathfinder finds the phase transitions that L2 regularization induces in a
network's error landscape, the saddle points behind them, the hierarchy of
accuracy basins they reveal, and low-error paths between independently
trained minima. Each command below runs one experiment; its outputs are
CSV tables, JSON files, safetensors checkpoints and figures (PNG, PDF, SVG).
.PP
.nf
EOT
"$tool" --help | esc
echo ".fi"
echo ".SH COMMANDS"
for c in $commands; do
    echo ".SS $c"
    echo ".nf"
    "$tool" "$c" --help | esc
    echo ".fi"
done
cat <<'EOT'
.SH ENVIRONMENT
.TP
.B PATHFINDER_DATA
The folder that holds the named datasets (mnist/, fashion-mnist/). Without
it, they are looked for in $XDG_DATA_HOME/pathfinder (or
~/.local/share/pathfinder), then in the data/ folder of the source tree the
program was built in.
.SH EXIT STATUS
0 on success, 1 on a runtime failure, 2 on bad usage or bad input. Errors
are one line on standard error naming the file and the problem.
.SH FILES
Run folders hold config.json (the settings, checked on resume), state.bin
(the state to resume from), the tables, checkpoints/ and figures/; rerunning
a command on its folder resumes it bit for bit.
.SH SEE ALSO
The README of the source tree, and the C headers pathfinder.h and
pathfinder/*.h.
EOT
