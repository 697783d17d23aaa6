package castore.fuse.transport;

import java.util.Objects;

/**
 * How to mount: names shown in /proc/mounts, reader threads, who may enter, how to mount, and the
 * largest request the kernel may send. Build from {@link #defaults()} with the withers.
 *
 * @param fsName             the mount's source, shown first in /proc/mounts
 * @param subtype            the type shown as {@code fuse.<subtype>} (empty: plain {@code fuse})
 * @param threads            reader threads, each on its own cloned /dev/fuse channel
 * @param allowOther         let other users (root included) into the mount; an ordinary user needs
 *                           {@code user_allow_other} in /etc/fuse.conf
 * @param defaultPermissions the kernel checks mode bits itself (and sends no ACCESS); off whatever
 *                           this says for a filesystem that {@linkplain castore.fuse.api.FileSystem#checksPermissions
 *                           checks permissions} itself
 * @param method             mount(2) or fusermount3; {@link MountMethod#AUTO} picks by privilege
 * @param maxWrite           the largest READ (and WRITE) payload in bytes, a multiple of the page
 *                           size: {@code max_pages = maxWrite / pageSize}
 * @param maxBackground      how many background requests (readahead) the kernel keeps in flight
 * @param debug              print one line per request and reply to stderr
 */
public record MountOptions(String fsName, String subtype, int threads, boolean allowOther,
                           boolean defaultPermissions, MountMethod method, int maxWrite, int maxBackground,
                           boolean debug) {

    /** How the mount is made. */
    public enum MountMethod {
        /** mount(2) when the process may (root), else fusermount3. */
        AUTO,
        /** mount(2) directly: needs CAP_SYS_ADMIN. */
        SYSCALL,
        /** The setuid helper fusermount3, which passes the /dev/fuse fd back over a socket. */
        FUSERMOUNT
    }

    public static final int MIB = 1 << 20;

    public MountOptions {
        Objects.requireNonNull(fsName, "fsName");
        Objects.requireNonNull(subtype, "subtype");
        Objects.requireNonNull(method, "method");
        if (fsName.isEmpty() || !plainWord(fsName)) {
            throw new IllegalArgumentException("fsName must be a non-empty word without ',', '=', spaces or '\\': " + fsName);
        }
        if (!plainWord(subtype)) {
            throw new IllegalArgumentException("subtype must be a word without ',', '=', spaces or '\\': " + subtype);
        }
        if (threads < 1 || threads > 64) {
            throw new IllegalArgumentException("threads must be in 1..64: " + threads);
        }
        if (maxWrite < 4096 || maxWrite > 16 * MIB || Integer.bitCount(maxWrite) != 1) {
            throw new IllegalArgumentException("maxWrite must be a power of two in 4 KiB..16 MiB: " + maxWrite);
        }
        if (maxBackground < 1 || maxBackground > 65535) {
            throw new IllegalArgumentException("maxBackground must be in 1..65535: " + maxBackground);
        }
    }

    /** fsName and subtype "castore", 4 threads, no allow_other, default_permissions, AUTO, 1 MiB, 64. */
    public static MountOptions defaults() {
        return new MountOptions("castore", "castore", 4, false, true, MountMethod.AUTO, MIB, 64, false);
    }

    public MountOptions withFsName(String fsName) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withSubtype(String subtype) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withThreads(int threads) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withAllowOther(boolean allowOther) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withDefaultPermissions(boolean defaultPermissions) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withMethod(MountMethod method) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withMaxWrite(int maxWrite) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withMaxBackground(int maxBackground) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    public MountOptions withDebug(boolean debug) {
        return new MountOptions(fsName, subtype, threads, allowOther, defaultPermissions, method, maxWrite, maxBackground, debug);
    }

    // Mount options are a comma-separated list of key=value words: keep ours unambiguous.
    private static boolean plainWord(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == ',' || c == '=' || c == '\\' || c <= ' ' || c == 0x7f) {
                return false;
            }
        }
        return true;
    }
}
