package castore.fuse.abi;

/** FUSE request opcodes ({@code enum fuse_opcode}, protocol 7.45) and their classification. */
public final class Opcode {
    public static final int LOOKUP = 1;
    public static final int FORGET = 2;
    public static final int GETATTR = 3;
    public static final int SETATTR = 4;
    public static final int READLINK = 5;
    public static final int SYMLINK = 6;
    public static final int MKNOD = 8;
    public static final int MKDIR = 9;
    public static final int UNLINK = 10;
    public static final int RMDIR = 11;
    public static final int RENAME = 12;
    public static final int LINK = 13;
    public static final int OPEN = 14;
    public static final int READ = 15;
    public static final int WRITE = 16;
    public static final int STATFS = 17;
    public static final int RELEASE = 18;
    public static final int FSYNC = 20;
    public static final int SETXATTR = 21;
    public static final int GETXATTR = 22;
    public static final int LISTXATTR = 23;
    public static final int REMOVEXATTR = 24;
    public static final int FLUSH = 25;
    public static final int INIT = 26;
    public static final int OPENDIR = 27;
    public static final int READDIR = 28;
    public static final int RELEASEDIR = 29;
    public static final int FSYNCDIR = 30;
    public static final int GETLK = 31;
    public static final int SETLK = 32;
    public static final int SETLKW = 33;
    public static final int ACCESS = 34;
    public static final int CREATE = 35;
    public static final int INTERRUPT = 36;
    public static final int BMAP = 37;
    public static final int DESTROY = 38;
    public static final int IOCTL = 39;
    public static final int POLL = 40;
    public static final int NOTIFY_REPLY = 41;
    public static final int BATCH_FORGET = 42;
    public static final int FALLOCATE = 43;
    public static final int READDIRPLUS = 44;
    public static final int RENAME2 = 45;
    public static final int LSEEK = 46;
    public static final int COPY_FILE_RANGE = 47;
    public static final int SETUPMAPPING = 48;
    public static final int REMOVEMAPPING = 49;
    public static final int SYNCFS = 50;
    public static final int TMPFILE = 51;
    public static final int STATX = 52;
    public static final int COPY_FILE_RANGE_64 = 53;

    private static final String[] NAMES = new String[54];

    static {
        String[] n = NAMES;
        n[LOOKUP] = "LOOKUP"; n[FORGET] = "FORGET"; n[GETATTR] = "GETATTR"; n[SETATTR] = "SETATTR";
        n[READLINK] = "READLINK"; n[SYMLINK] = "SYMLINK"; n[MKNOD] = "MKNOD"; n[MKDIR] = "MKDIR";
        n[UNLINK] = "UNLINK"; n[RMDIR] = "RMDIR"; n[RENAME] = "RENAME"; n[LINK] = "LINK"; n[OPEN] = "OPEN";
        n[READ] = "READ"; n[WRITE] = "WRITE"; n[STATFS] = "STATFS"; n[RELEASE] = "RELEASE"; n[FSYNC] = "FSYNC";
        n[SETXATTR] = "SETXATTR"; n[GETXATTR] = "GETXATTR"; n[LISTXATTR] = "LISTXATTR";
        n[REMOVEXATTR] = "REMOVEXATTR"; n[FLUSH] = "FLUSH"; n[INIT] = "INIT"; n[OPENDIR] = "OPENDIR";
        n[READDIR] = "READDIR"; n[RELEASEDIR] = "RELEASEDIR"; n[FSYNCDIR] = "FSYNCDIR"; n[GETLK] = "GETLK";
        n[SETLK] = "SETLK"; n[SETLKW] = "SETLKW"; n[ACCESS] = "ACCESS"; n[CREATE] = "CREATE";
        n[INTERRUPT] = "INTERRUPT"; n[BMAP] = "BMAP"; n[DESTROY] = "DESTROY"; n[IOCTL] = "IOCTL";
        n[POLL] = "POLL"; n[NOTIFY_REPLY] = "NOTIFY_REPLY"; n[BATCH_FORGET] = "BATCH_FORGET";
        n[FALLOCATE] = "FALLOCATE"; n[READDIRPLUS] = "READDIRPLUS"; n[RENAME2] = "RENAME2"; n[LSEEK] = "LSEEK";
        n[COPY_FILE_RANGE] = "COPY_FILE_RANGE"; n[SETUPMAPPING] = "SETUPMAPPING";
        n[REMOVEMAPPING] = "REMOVEMAPPING"; n[SYNCFS] = "SYNCFS"; n[TMPFILE] = "TMPFILE"; n[STATX] = "STATX";
        n[COPY_FILE_RANGE_64] = "COPY_FILE_RANGE_64";
    }

    private Opcode() {
    }

    public static String name(int opcode) {
        String name = opcode >= 0 && opcode < NAMES.length ? NAMES[opcode] : null;
        return name != null ? name : "OPCODE_" + opcode;
    }

    /**
     * Whether the request would change the filesystem. A read-only filesystem answers these EROFS
     * (the kernel refuses most of them itself on an MS_RDONLY mount; this covers the rest).
     */
    public static boolean isWrite(int opcode) {
        return switch (opcode) {
            case SETATTR, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, WRITE, SETXATTR, REMOVEXATTR,
                 CREATE, FALLOCATE, RENAME2, COPY_FILE_RANGE, TMPFILE, COPY_FILE_RANGE_64 -> true;
            default -> false;
        };
    }

    /** Requests the kernel expects no reply to. */
    public static boolean isNoReply(int opcode) {
        return opcode == FORGET || opcode == BATCH_FORGET || opcode == NOTIFY_REPLY;
    }
}
