package castore.fuse.api;

import java.nio.ByteBuffer;

/**
 * An inode-based read-only filesystem, as the FUSE kernel protocol sees one (cf. fuse-backend-rs's
 * FileSystem trait). Transports (/dev/fuse now, virtio-fs later) decode requests, call these
 * methods and encode replies; implementations never see the wire format.
 *
 * <p>Methods may be called concurrently from many threads, including virtual threads: they may
 * block on slow storage. Failures are reported by throwing {@link FuseException} with an errno;
 * any other exception becomes EIO. Node id 1 is the root ({@link #ROOT_ID}).
 *
 * <p>Lookup counting: every successful {@link #lookup} and every entry a
 * {@link DirectorySink#addPlus} accepts adds one reference to that node id; {@link #forget}
 * removes {@code nlookup} of them. A node id must stay valid while it has references.
 */
public interface FileSystem {
    long ROOT_ID = 1;

    /** Called once after INIT negotiation, before any other request. */
    default void init(InitInfo info) {
    }

    /**
     * Called once after INIT negotiation, before any other request, with a way to push content
     * into the kernel's page cache ({@link KernelCache#NONE} where the transport has none).
     * The default ignores the cache and calls {@link #init(InitInfo)}.
     */
    default void init(InitInfo info, KernelCache kernelCache) {
        init(info);
    }

    /**
     * Called once after INIT negotiation, before any other request, with the kernel's page
     * cache and, if this filesystem {@link #wantsPassthrough wants passthrough} and INIT
     * negotiated it, the transport's {@link BackingFiles} (null otherwise). The default calls
     * {@link #init(InitInfo, KernelCache)}.
     */
    default void init(InitInfo info, KernelCache kernelCache, BackingFiles backingFiles) {
        init(info, kernelCache);
    }

    /**
     * Whether INIT should ask for FUSE passthrough. A filesystem that says yes must answer OPEN
     * itself (never ENOSYS, which ends OPEN requests and so passthrough for the session).
     */
    default boolean wantsPassthrough() {
        return false;
    }

    /**
     * Whether this filesystem answers {@link #access ACCESS} itself and its operations allow nothing
     * that its mode bits, checked against any caller's ids, would deny (as when every mode grants
     * all users the same and write is refused anyway). Then the mount goes without {@code default_permissions}
     * and the kernel skips its mode-bit check on every path component and open (about 6% of a
     * cached {@code lstat}); it still refuses exec of a file without x bits.
     */
    default boolean checksPermissions() {
        return false;
    }

    /** The session ends (unmount, DESTROY, or a hand-over to another process). */
    default void destroy() {
    }

    /**
     * The state another process needs to go on serving this mount's kernel: the node ids the
     * kernel holds (with their lookup counts) and the open handles. Called during a hand-over
     * ({@code castore mount --take-over}) with no request in flight; after it, this process
     * serves nothing more unless the hand-over fails. The default refuses: a filesystem that
     * cannot be handed over throws with the reason.
     */
    default byte[] handOverState() throws java.io.IOException {
        throw new java.io.IOException("this filesystem cannot be handed over to another process");
    }

    /**
     * Takes the state {@link #handOverState} gave in the process that served this mount before,
     * after {@link #init} and before any request. Throws if it cannot (another version's state,
     * a store that lacks what the state names).
     */
    default void takeOverState(byte[] state) throws java.io.IOException {
        throw new java.io.IOException("this filesystem cannot take over a mount");
    }

    /**
     * Whether serving {@code op} on {@code nodeId} may block on slow storage (a store fetch). The
     * transport runs such requests on virtual threads, so a slow fetch never holds one of its few
     * reader threads, and answers the others directly on the reader thread (no hand-off). Called
     * on a reader thread for every request: it must be cheap and must never block. The default
     * says yes for every operation that may read content or directories.
     */
    default boolean mayBlock(Operation op, long nodeId) {
        return switch (op) {
            case RELEASE, RELEASEDIR, STATFS, ACCESS -> false;
            default -> true;
        };
    }

    /**
     * Looks up {@code name} in directory {@code parent}. Throw ENOENT for an uncacheable miss,
     * or return {@link Entry#negative} for a miss the kernel may cache.
     */
    Entry lookup(Request request, long parent, byte[] name) throws FuseException;

    /** Drops {@code nlookup} references to {@code nodeId}; no reply is sent. */
    void forget(long nodeId, long nlookup);

    /** Several forgets at once (BATCH_FORGET). */
    default void batchForget(long[] nodeIds, long[] nlookups) {
        for (int i = 0; i < nodeIds.length; i++) {
            forget(nodeIds[i], nlookups[i]);
        }
    }

    /** Attributes of a node, with how long the kernel may cache them. */
    AttrReply getattr(Request request, long nodeId) throws FuseException;

    /** The target of a symlink; EINVAL if the node is not one. */
    byte[] readlink(Request request, long nodeId) throws FuseException;

    /**
     * Opens a file for reading; {@code flags} are the open(2) flags. Throwing ENOSYS here (and in
     * {@link #opendir}) switches the kernel to zero-message opens for the rest of the session: it
     * then keeps the page cache (and directory cache) on its own and sends file handle 0.
     */
    OpenReply open(Request request, long nodeId, int flags) throws FuseException;

    /**
     * Reads up to {@code dst.remaining()} bytes at {@code offset} into {@code dst}; fewer only at
     * end of file. Must be safe to call concurrently on one handle.
     */
    void read(Request request, long nodeId, long fileHandle, long offset, ByteBuffer dst) throws FuseException;

    default void release(Request request, long nodeId, long fileHandle) {
    }

    OpenReply opendir(Request request, long nodeId) throws FuseException;

    /**
     * Lists a directory from cookie {@code offset} on (0 = start). Each entry carries the cookie
     * of the entry after it; stop when the sink returns false. With {@code plus}, entries are
     * added with {@link DirectorySink#addPlus} and count as lookups when accepted.
     */
    void readdir(Request request, long nodeId, long fileHandle, long offset, boolean plus, DirectorySink sink)
            throws FuseException;

    default void releasedir(Request request, long nodeId, long fileHandle) {
    }

    StatFs statfs(Request request, long nodeId) throws FuseException;

    /** The value of extended attribute {@code name}; ENODATA if absent. */
    byte[] getxattr(Request request, long nodeId, byte[] name) throws FuseException;

    /** Names of the extended attributes, each followed by NUL. */
    byte[] listxattr(Request request, long nodeId) throws FuseException;

    /** Permission check (sent only without default_permissions). */
    default void access(Request request, long nodeId, int mask) throws FuseException {
    }

    /** SEEK_DATA / SEEK_HOLE: files have no holes, so the default answers for a dense file. */
    default long lseek(Request request, long nodeId, long fileHandle, long offset, int whence) throws FuseException {
        throw new FuseException(Errno.ENOSYS);
    }
}
