# Sourced by install_test.sh and deb_test.sh: builds and runs the three
# examples/ against an installed hpcalloc.
#   build_and_run_examples SOURCE_DIR SCRATCH_DIR [PREFIX]
# With PREFIX, CMake and pkg-config look there (CMAKE_PREFIX_PATH,
# PKG_CONFIG_PATH); without it, in the system's places (the Debian
# packages). Each example must build, exit 0 and print its "name: " line.
# Needs fail() from the caller.
build_and_run_examples() {
  local source=$1 scratch=$2 prefix=${3:-}
  local cmake_prefix=() pc_path=${PKG_CONFIG_PATH:-}
  if [[ -n "$prefix" ]]; then
    cmake_prefix=(-DCMAKE_PREFIX_PATH="$prefix")
    pc_path=$(dirname "$(find "$prefix" -name hpcalloc.pc -print -quit)")
  fi
  local example dir program
  for example in c-static-find-package:c_static_example cxx-find-package:cxx_example \
                 c-pkg-config:pkg_config_example; do
    dir=${example%%:*}
    program=${example#*:}
    rm -rf "${scratch:?}/$dir"
    if [[ $dir == c-pkg-config ]]; then
      cp -r "$source/examples/$dir" "$scratch/$dir"
      PKG_CONFIG_PATH=$pc_path make -s -C "$scratch/$dir" >"$scratch/$dir.log" 2>&1 ||
        { cat "$scratch/$dir.log"; fail "examples/$dir does not build with pkg-config"; }
    else
      { cmake -S "$source/examples/$dir" -B "$scratch/$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
          "${cmake_prefix[@]}" && cmake --build "$scratch/$dir"; } >"$scratch/$dir.log" 2>&1 ||
        { cat "$scratch/$dir.log"; fail "examples/$dir does not build against the installed package"; }
    fi
    "$scratch/$dir/$program" >"$scratch/$program.out" 2>&1 ||
      { cat "$scratch/$program.out"; fail "$program failed"; }
    grep -q "^$program: " "$scratch/$program.out" ||
      { cat "$scratch/$program.out"; fail "$program printed nothing"; }
  done
}
