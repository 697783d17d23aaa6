# Sourced (POSIX sh) by ./castore and ./mvnw: sets JAVA_HOME to a JDK 25 or newer.
# Looks at $JAVA_HOME, the java on PATH, then /usr/lib/jvm/* and /opt/*; fails clearly if none.
castore_jdk_ok() { # is $1 a JDK of feature version >= 25?
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 1
  # The JDK's release file says its version without starting a JVM (which would cost every
  # ./castore run 50-150 ms); ask java itself only when that file has no JAVA_VERSION.
  castore_v=
  if [ -r "$1/release" ]; then
    while IFS= read -r castore_line; do
      case $castore_line in JAVA_VERSION=*) castore_v=${castore_line#JAVA_VERSION=}; castore_v=${castore_v#\"} ;; esac
    done <"$1/release"
  fi
  [ -n "$castore_v" ] || castore_v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  castore_v=${castore_v%%[!0-9]*}  # "25.0.3", "26-ea": the feature version
  [ -n "$castore_v" ] && [ "$castore_v" -ge 25 ] 2>/dev/null
}
castore_find_jdk() {
  if [ -n "${JAVA_HOME:-}" ] && castore_jdk_ok "$JAVA_HOME"; then return 0; fi
  if command -v java >/dev/null 2>&1; then
    castore_c=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    if castore_jdk_ok "$castore_c"; then JAVA_HOME=$castore_c; export JAVA_HOME; return 0; fi
  fi
  castore_flags=$-
  set +f  # mvnw runs with globbing off
  for castore_c in /usr/lib/jvm/* /opt/*jdk* /opt/java/*; do
    if castore_jdk_ok "$castore_c"; then
      JAVA_HOME=$castore_c; export JAVA_HOME
      case $castore_flags in *f*) set -f ;; esac
      return 0
    fi
  done
  case $castore_flags in *f*) set -f ;; esac
  echo "castore: no JDK 25 or newer found (looked at JAVA_HOME, PATH, /usr/lib/jvm, /opt). Install one (e.g. Temurin 25) and set JAVA_HOME." >&2
  return 1
}
castore_find_jdk || exit 1
