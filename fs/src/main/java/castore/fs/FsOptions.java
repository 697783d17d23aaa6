package castore.fs;

import castore.model.DirectoryNode;
import castore.model.Node;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * How the castore filesystem behaves.
 *
 * @param listRoot       whether listing the mount root is allowed (streams every root name); EPERM otherwise
 * @param xattrs         whether the digest extended attributes are served; without them xattr
 *                       requests get ENOSYS, which the kernel remembers and shows as EOPNOTSUPP
 * @param rootTtl        how long the kernel may cache names in the mount root (roots can be
 *                       re-pointed), counted from when the catalog was asked; names in use are asked
 *                       for again in the background ({@link RootAnswers}); everything below a root
 *                       is cached for as long as the kernel likes
 * @param readAheadBytes size of one read-ahead window for sequential readers; 0 turns read-ahead off
 * @param zeroMessageOpens answer OPEN (and OPENDIR, unless the root may be listed) with ENOSYS, so
 *                       the kernel opens files and directories itself, keeping page and directory
 *                       caches, and sends no OPEN/RELEASE/OPENDIR/RELEASEDIR at all; reads then find
 *                       the blob by node id. Off: every open gets a handle holding its own reader.
 * @param problems       where missing or corrupted objects are reported, one line each, once per digest
 * @param rootEntered    told of a directory root each time a lookup in the mount root finds it (e.g.
 *                       to prefetch its closure from a remote store); must not block
 * @param feedKernelCache after a random read, push the rest of the verified chunk it used into the
 *                       kernel's page cache (FUSE_NOTIFY_STORE), so nearby reads need no request
 * @param accessed       told of each Directory loaded and each file whose blob is opened for reading
 *                       (again after the kernel forgot it), e.g. to record a read trace
 *                       ({@link ReadTrace}); must not block
 */
public record FsOptions(boolean listRoot, boolean xattrs, Duration rootTtl, int readAheadBytes, boolean zeroMessageOpens,
                        Consumer<String> problems, Consumer<DirectoryNode> rootEntered, boolean feedKernelCache,
                        Consumer<Node> accessed) {
    public static final Duration DEFAULT_ROOT_TTL = Duration.ofSeconds(1);
    public static final int DEFAULT_READ_AHEAD = 1 << 20;

    public FsOptions {
        Objects.requireNonNull(rootTtl, "rootTtl");
        Objects.requireNonNull(problems, "problems");
        Objects.requireNonNull(rootEntered, "rootEntered");
        Objects.requireNonNull(accessed, "accessed");
        if (rootTtl.isNegative()) {
            throw new IllegalArgumentException("root TTL must not be negative: " + rootTtl);
        }
        if (readAheadBytes < 0) {
            throw new IllegalArgumentException("read-ahead must not be negative: " + readAheadBytes);
        }
    }

    /**
     * Root listing refused, xattrs on, 1 s root TTL, 1 MiB read-ahead, zero-message opens, problems
     * to stderr, kernel cache fed, nothing told of accesses.
     */
    public static FsOptions defaults() {
        return new FsOptions(false, true, DEFAULT_ROOT_TTL, DEFAULT_READ_AHEAD, true,
                line -> System.err.println("castore: " + line), root -> { }, true, node -> { });
    }

    public FsOptions withListRoot(boolean listRoot) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withXattrs(boolean xattrs) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withRootTtl(Duration rootTtl) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withReadAheadBytes(int readAheadBytes) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withZeroMessageOpens(boolean zeroMessageOpens) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withRootEntered(Consumer<DirectoryNode> rootEntered) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withProblems(Consumer<String> problems) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withFeedKernelCache(boolean feedKernelCache) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }

    public FsOptions withAccessed(Consumer<Node> accessed) {
        return new FsOptions(listRoot, xattrs, rootTtl, readAheadBytes, zeroMessageOpens, problems, rootEntered, feedKernelCache, accessed);
    }
}
