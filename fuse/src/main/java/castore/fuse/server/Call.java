package castore.fuse.server;

import castore.fuse.abi.Replies;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.Operation;
import castore.fuse.api.Request;

import java.nio.ByteBuffer;

/**
 * A decoded request for the {@link FileSystem}: everything it needs copied out of the read buffer,
 * so it can be served on another thread while the reader reads the next request. {@link #serve}
 * calls the filesystem and encodes the reply body after the out header; it returns the body size.
 */
sealed interface Call {
    Request request();

    long nodeId();

    Operation op();

    int serve(FileSystem fs, ReplyBuffer out) throws FuseException;

    /** Where reply bodies start. */
    int BODY = Wire.OUT_HEADER;

    record Lookup(Request request, long nodeId, byte[] name) implements Call {
        public Operation op() {
            return Operation.LOOKUP;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.entry(out.array(), BODY, fs.lookup(request, nodeId, name));
        }
    }

    record Getattr(Request request, long nodeId) implements Call {
        public Operation op() {
            return Operation.GETATTR;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.attrOut(out.array(), BODY, fs.getattr(request, nodeId));
        }
    }

    record Readlink(Request request, long nodeId) implements Call {
        public Operation op() {
            return Operation.READLINK;
        }

        /**
         * The longest target a reply may carry: the kernel takes at most a page less one byte
         * (fuse_readlink_folio) and turns a longer reply into EIO; Linux paths, symlink targets
         * included, are shorter than PATH_MAX (4096) on every page size.
         */
        static final int MAX_TARGET = 4095;

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            byte[] target = fs.readlink(request, nodeId);
            if (target.length > MAX_TARGET) {
                throw new FuseException(Errno.ENAMETOOLONG);
            }
            return copyBody(out, target, Errno.ENAMETOOLONG);
        }
    }

    record Open(Request request, long nodeId, int flags) implements Call {
        public Operation op() {
            return Operation.OPEN;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.openOut(out.array(), BODY, fs.open(request, nodeId, flags));
        }
    }

    record Read(Request request, long nodeId, long fileHandle, long offset, int size) implements Call {
        public Operation op() {
            return Operation.READ;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            if (size > out.array().length - BODY) {
                throw new FuseException(Errno.EIO, "READ of " + size + " bytes exceeds the reply buffer");
            }
            // A view of the reply array after the header: the filesystem fills it in place.
            ByteBuffer dst = ByteBuffer.wrap(out.array(), BODY, size).slice();
            fs.read(request, nodeId, fileHandle, offset, dst);
            return dst.position();
        }
    }

    record Release(Request request, long nodeId, long fileHandle) implements Call {
        public Operation op() {
            return Operation.RELEASE;
        }

        public int serve(FileSystem fs, ReplyBuffer out) {
            fs.release(request, nodeId, fileHandle);
            return 0;
        }
    }

    record Opendir(Request request, long nodeId) implements Call {
        public Operation op() {
            return Operation.OPENDIR;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.openOut(out.array(), BODY, fs.opendir(request, nodeId));
        }
    }

    record Readdir(Request request, long nodeId, long fileHandle, long offset, int size, boolean plus)
            implements Call {
        public Operation op() {
            return plus ? Operation.READDIRPLUS : Operation.READDIR;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            var sink = out.dirents().reset(out.array(), BODY, size, plus);
            fs.readdir(request, nodeId, fileHandle, offset, plus, sink);
            return sink.length();
        }
    }

    record Releasedir(Request request, long nodeId, long fileHandle) implements Call {
        public Operation op() {
            return Operation.RELEASEDIR;
        }

        public int serve(FileSystem fs, ReplyBuffer out) {
            fs.releasedir(request, nodeId, fileHandle);
            return 0;
        }
    }

    record Statfs(Request request, long nodeId) implements Call {
        public Operation op() {
            return Operation.STATFS;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.statfsOut(out.array(), BODY, fs.statfs(request, nodeId));
        }
    }

    /** GETXATTR and LISTXATTR: size 0 probes the length; a smaller buffer than the value is ERANGE. */
    record Xattr(Request request, long nodeId, byte[] name, int size) implements Call {
        public Operation op() {
            return name == null ? Operation.LISTXATTR : Operation.GETXATTR;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            byte[] value = name == null ? fs.listxattr(request, nodeId) : fs.getxattr(request, nodeId, name);
            if (size == 0) {
                return Replies.getxattrOut(out.array(), BODY, value.length);
            }
            if (value.length > size) {
                throw new FuseException(Errno.ERANGE);
            }
            return copyBody(out, value, Errno.E2BIG);
        }
    }

    record Access(Request request, long nodeId, int mask) implements Call {
        public Operation op() {
            return Operation.ACCESS;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            fs.access(request, nodeId, mask);
            return 0;
        }
    }

    record Lseek(Request request, long nodeId, long fileHandle, long offset, int whence) implements Call {
        public Operation op() {
            return Operation.LSEEK;
        }

        public int serve(FileSystem fs, ReplyBuffer out) throws FuseException {
            return Replies.lseekOut(out.array(), BODY, fs.lseek(request, nodeId, fileHandle, offset, whence));
        }
    }

    private static int copyBody(ReplyBuffer out, byte[] bytes, int errnoIfTooBig) throws FuseException {
        if (bytes.length > out.array().length - BODY) {
            throw new FuseException(errnoIfTooBig);
        }
        System.arraycopy(bytes, 0, out.array(), BODY, bytes.length);
        return bytes.length;
    }
}
