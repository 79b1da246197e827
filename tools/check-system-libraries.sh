#!/usr/bin/env bash
# Check the system libraries that Blender's Python module (bpy) loads; name the Debian packages to
# install when some are missing, instead of letting `import bpy` fail with an obscure loader error.
set -uo pipefail

declare -A package_of=(
  [libGL.so.1]=libgl1 [libEGL.so.1]=libegl1 [libX11.so.6]=libx11-6 [libXext.so.6]=libxext6
  [libXi.so.6]=libxi6 [libXrender.so.1]=libxrender1 [libXfixes.so.3]=libxfixes3 [libSM.so.6]=libsm6
  [libICE.so.6]=libice6 [libxkbcommon.so.0]=libxkbcommon0 [libxcb.so.1]=libxcb1
)
cache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
missing=()
for library in "${!package_of[@]}"; do
  grep -q "$library" <<<"$cache" || missing+=("${package_of[$library]}")
done
if ((${#missing[@]})); then
  echo "Blender's Python module (bpy) needs system libraries that are missing here." >&2
  echo "On Debian/Ubuntu install them with:" >&2
  echo "  sudo apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  exit 1
fi
