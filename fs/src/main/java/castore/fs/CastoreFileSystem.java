package castore.fs;

import castore.fuse.api.BackingFiles;
import castore.fuse.api.AttrReply;
import castore.fuse.api.DirectorySink;
import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.InitInfo;
import castore.fuse.api.KernelCache;
import castore.fuse.api.OpenReply;
import castore.fuse.api.Operation;
import castore.fuse.api.Request;
import castore.fuse.api.StatFs;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.DirectoryService;
import castore.service.RootService;
import castore.service.Store;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The castore filesystem: every root of the RootService is an entry of the mount root, and
 * below it the immutable trees of the DirectoryService and BlobService, read-only.
 *
 * <p>Caching: names in the mount root are mutable (a root can be re-pointed or added), so they
 * are valid for {@link FsOptions#rootTtl()}; everything below a root is content-addressed and
 * never changes, so entries, negative entries and attributes there are valid for as long as the
 * kernel likes. By default the kernel opens files and directories itself (zero-message opens,
 * with KEEP_CACHE and CACHE_DIR), so repeated access to cached content costs no request at all.
 *
 * <p>Inodes (see docs/filesystem.md): files share one node id per (blob digest, executable bit)
 * and symlinks one per target, so identical files share the page cache. Directories get one node
 * id per place they are looked up in, because the kernel keeps at most one dentry per directory
 * inode and would move it between places; their st_ino is still derived from the digest, so
 * identical directories (like identical files and symlinks) show the same inode number.
 * Directories are fetched on the first lookup or listing inside them, and dropped with their
 * node id when the kernel forgets it.
 *
 * <p>Errors: an object missing from its service or failing verification is EIO for the
 * operation that needed it (stat of the node itself still works) and is reported once per digest.
 */
public final class CastoreFileSystem implements FileSystem {
    /** Validity of anything content-addressed: as long as the kernel will keep it. */
    static final long FOREVER = Long.MAX_VALUE;

    private static final int O_ACCMODE = 03;
    private static final int O_TRUNC = 01000;
    private static final int W_OK = 2;
    private static final int X_OK = 1;
    private static final byte[] DOT = {'.'};
    private static final byte[] DOT_DOT = {'.', '.'};
    private static final B3Digest EMPTY_DIRECTORY = Directory.empty().digest();
    /** Files kept open for handle-less reads; each holds a reader (and maybe read-ahead windows). */
    private static final int READERS = 64;

    private final BlobService blobs;
    private final DirectoryService directories;
    private final RootService roots;
    private final FsOptions options;
    private final long rootTtlNanos;
    private final ProblemLog problems;
    private final PlainCopies plainCopies;
    /** Set at INIT when passthrough was negotiated; null otherwise. */
    private volatile PassthroughOpens passthrough;
    /** Open files the kernel reads from a plain copy (no reader here), by handle: their inodes. */
    private final ConcurrentHashMap<Long, Inode> passthroughHandles = new ConcurrentHashMap<>();

    private final Inode root = new Inode(ROOT_ID, null, null, InodeNumbers.ROOT, InodeNumbers.ROOT);
    private final InodeTable inodes = new InodeTable();
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final ConcurrentHashMap<Long, OpenFile> openFiles = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Long, RootListing> rootListings = new ConcurrentHashMap<>();
    private final FetchLatency rootLatency = new FetchLatency();
    /** The catalog's answers given out, refreshed in the background while in use. */
    private final RootAnswers rootAnswers;
    private final FetchLatency directoryLatency = new FetchLatency();
    private final FetchLatency blobLatency = new FetchLatency();
    /** Files read without a handle (zero-message opens), by node id. */
    private final ReaderCache readers = new ReaderCache(READERS);
    private final KernelCacheFeeder kernelCache = new KernelCacheFeeder();
    private final ListingAttributes listingAttributes = new ListingAttributes();

    public CastoreFileSystem(BlobService blobs, DirectoryService directories, RootService roots, FsOptions options) {
        this(blobs, directories, roots, options, null);
    }

    /**
     * A filesystem that lets the kernel read files of at least {@link PlainCopies#minBytes} from
     * their plain copies (FUSE passthrough, as root on Linux 6.9+), asking {@code plainCopies}
     * for a copy of each such file opened without one. It answers OPEN itself (passthrough is
     * decided per open), so files are not opened by the kernel alone (zero-message opens).
     */
    public CastoreFileSystem(BlobService blobs, DirectoryService directories, RootService roots, FsOptions options,
                             PlainCopies plainCopies) {
        this.plainCopies = plainCopies;
        this.blobs = blobs;
        this.directories = directories;
        this.roots = roots;
        this.options = options;
        this.rootTtlNanos = saturatedNanos(options);
        this.rootAnswers = new RootAnswers(roots, rootTtlNanos, options.problems());
        this.problems = new ProblemLog(options.problems());
    }

    public CastoreFileSystem(Store store, FsOptions options) {
        this(store.blobs(), store.directories(), store.roots(), options);
    }

    public CastoreFileSystem(Store store, FsOptions options, PlainCopies plainCopies) {
        this(store.blobs(), store.directories(), store.roots(), options, plainCopies);
    }

    private static long saturatedNanos(FsOptions options) {
        try {
            return options.rootTtl().toNanos();
        } catch (ArithmeticException tooLong) {
            return FOREVER;
        }
    }

    /** Node ids currently held (the mount root excluded): falls when the kernel forgets. */
    public int inodeCount() {
        return inodes.size();
    }

    /** Open file handles (each holds a blob reader). */
    public int openFileCount() {
        return openFiles.size();
    }

    @Override
    public void init(InitInfo info, KernelCache cache) {
        if (options.feedKernelCache()) {
            kernelCache.attach(cache);
        }
        init(info);
    }

    @Override
    public void init(InitInfo info, KernelCache cache, BackingFiles backingFiles) {
        if (backingFiles != null && plainCopies != null) {
            passthrough = new PassthroughOpens(backingFiles, plainCopies, problems);
        }
        init(info, cache);
    }

    // Every node is world-readable, directories world-searchable and nothing is writable (EROFS), so
    // the kernel's mode-bit check could only ever refuse exec of a plain file, which it still does
    // without default_permissions; access(2) is answered by access() below.
    @Override
    public boolean checksPermissions() {
        return true;
    }

    @Override
    public boolean wantsPassthrough() {
        return plainCopies != null;
    }

    /**
     * Tells the filesystem that the store did not answer its first questions: until the root
     * catalog answers, names in the mount root get the last answers it keeps beyond this mount
     * (a cache directory) without waiting for it ({@link RootAnswers#presumeFailing}).
     */
    public void storeDidNotAnswer() {
        rootAnswers.presumeFailing();
    }

    /** Whether INIT negotiated passthrough: files with a plain copy are then read by the kernel from it. */
    public boolean passthroughActive() {
        return passthrough != null;
    }

    /** Open files the kernel reads from plain copies. */
    public int passthroughFileCount() {
        return passthroughHandles.size();
    }

    /**
     * Attributes, symlink targets and xattrs come from nodes already in memory, and so do lookups
     * and listings of a directory already fetched: those never block. The root catalog, blob
     * opens and reads, and a first fetch of a directory may: they go to a virtual thread when
     * that kind of access has recently been slow (see {@link FetchLatency}).
     */
    @Override
    public boolean mayBlock(Operation op, long nodeId) {
        return switch (op) {
            case GETATTR, READLINK, GETXATTR, LISTXATTR, RELEASE, RELEASEDIR, STATFS, ACCESS, LSEEK -> false;
            case LOOKUP, READDIR, READDIRPLUS -> needsFetch(nodeId);
            case OPENDIR -> !kernelOpensDirectories() && needsFetch(nodeId);
            case OPEN -> !kernelOpensFiles() && blobLatency.slow();
            case READ -> blobLatency.slow();
        };
    }

    /** Whether serving a request on this directory needs a slow fetch first. */
    private boolean needsFetch(long nodeId) {
        if (nodeId == ROOT_ID) {
            return rootLatency.slow();
        }
        return !isFetched(nodeId) && directoryLatency.slow();
    }

    /** Whether the node is a directory whose listing is already in memory (or not a directory at all). */
    private boolean isFetched(long nodeId) {
        Inode inode = inodes.get(nodeId);
        if (inode == null || !(inode.node instanceof DirectoryNode)) {
            return true;
        }
        CompletableFuture<Directory> listing = inode.listing();
        return listing != null && listing.isDone() && !listing.isCompletedExceptionally();
    }

    // ---- names ------------------------------------------------------------------------------

    @Override
    public Entry lookup(Request request, long parent, byte[] name) throws FuseException {
        Inode dir = inode(parent);
        if (dir != root && !(dir.node instanceof DirectoryNode)) {
            throw new FuseException(Errno.ENOTDIR);
        }
        if (name.length > Name.MAX_LENGTH) {
            // statfs gives names at most that long (the kernel passes FUSE up to 1024 bytes):
            // ENAMETOOLONG as on ext4 or tmpfs, not a miss cached as a negative entry.
            throw new FuseException(Errno.ENAMETOOLONG);
        }
        if (dir == root) {
            return lookupRoot(name);
        }
        Name childName = Name.ofOrNull(name);
        if (childName == null) {
            return Entry.negative(FOREVER);
        }
        Directory listing = listing(dir);
        int index = listing.indexOf(childName);
        if (index < 0) {
            return Entry.negative(FOREVER);
        }
        Node child = listing.node(index);
        if (dir.listedBare() && !(child instanceof DirectoryNode)) {
            listingAttributes.bareNameLookedUp();
        }
        return entry(reference(dir, childName, child, index), FOREVER);
    }

    private Entry lookupRoot(byte[] name) throws FuseException {
        Name rootName = Name.ofOrNull(name);
        if (rootName == null) {
            return missingRoot();
        }
        Node node;
        long validNanos;
        long now = System.nanoTime();
        RootAnswers.Answer kept = rootAnswers.fresh(rootName, now);
        if (kept != null) {
            node = kept.node();
            validNanos = rootAnswers.remainingNanos(kept.askedAt(), now);
        } else if ((kept = rootAnswers.lastKnownWhileFailing(rootName, now)) != null) {
            // The catalog is failing: its last answer, without waiting for its timeout again.
            node = kept.node();
            validNanos = rootTtlNanos;
        } else {
            Optional<Node> asked;
            try {
                asked = rootLatency.time(() -> roots.get(rootName));
            } catch (IOException | RuntimeException e) {
                RootAnswers.Answer last = rootAnswers.failed(rootName, now, e);
                if (last == null) {
                    problems.report("roots: " + e.getMessage(), "root service failed: " + e.getMessage());
                    throw new FuseException(Errno.EIO);
                }
                return rootEntry(rootName, last.node(), rootTtlNanos);
            }
            rootAnswers.record(rootName, asked, now);
            if (asked.isEmpty()) {
                return missingRoot();
            }
            node = asked.get();
            // Counted from when it was asked for, like an answer from memory.
            validNanos = rootAnswers.enabled() ? rootAnswers.remainingNanos(now, System.nanoTime()) : rootTtlNanos;
        }
        return rootEntry(rootName, node, validNanos);
    }

    private Entry rootEntry(Name rootName, Node node, long validNanos) {
        if (node instanceof DirectoryNode d) {
            options.rootEntered().accept(d);
        }
        return entry(reference(root, rootName, node, -1), validNanos);
    }

    /** A name the root catalog does not have: cached for the root TTL, like the names it has. */
    private Entry missingRoot() throws FuseException {
        if (rootTtlNanos == 0) {
            throw new FuseException(Errno.ENOENT);
        }
        return Entry.negative(rootTtlNanos);
    }

    /**
     * One more lookup reference to {@code child}, named {@code name} in {@code parent}. Files and
     * symlinks are keyed by their node (content); directories also by where they are.
     */
    private Inode reference(Inode parent, Name name, Node child, int index) {
        Object key = child instanceof DirectoryNode d ? new PlacedDirectory(parent.id, name, d) : child;
        Inode inode = inodes.reference(key, child, parent.ino);
        if (index >= 0 && child instanceof FileNode) {
            inode.lookedUpIn = parent; // where it was found, for read-ahead across the files (FilesAhead)
            inode.indexInParent = index;
        }
        return inode;
    }

    /** The key of a directory's node id: the directory at one place of the tree. */
    private record PlacedDirectory(long parentId, Name name, DirectoryNode node) {
        // Written out, as in FileNode: the generated ones are slow until the JIT has compiled them.
        @Override
        public boolean equals(Object o) {
            return o instanceof PlacedDirectory other && parentId == other.parentId && name.equals(other.name)
                    && node.equals(other.node);
        }

        @Override
        public int hashCode() {
            return (31 * Long.hashCode(parentId) + name.hashCode()) * 31 + node.hashCode();
        }
    }

    private Entry entry(Inode inode, long entryValidNanos) {
        return new Entry(inode.id, 0, NodeAttributes.attr(inode), entryValidNanos, FOREVER);
    }

    @Override
    public void forget(long nodeId, long nlookup) {
        inodes.forget(nodeId, nlookup);
    }

    // ---- attributes -------------------------------------------------------------------------

    @Override
    public AttrReply getattr(Request request, long nodeId) throws FuseException {
        return new AttrReply(NodeAttributes.attr(inode(nodeId)), FOREVER);
    }

    @Override
    public byte[] readlink(Request request, long nodeId) throws FuseException {
        if (inode(nodeId).node instanceof SymlinkNode s) {
            return s.target().toByteArray();
        }
        throw new FuseException(Errno.EINVAL);
    }

    @Override
    public void access(Request request, long nodeId, int mask) throws FuseException {
        Inode inode = inode(nodeId);
        if ((mask & W_OK) != 0) {
            throw new FuseException(Errno.EROFS);
        }
        // Modes as NodeAttributes gives them: only directories and executables have x bits.
        boolean noExec = inode.node instanceof FileNode f ? !f.executable() : inode.node instanceof SymlinkNode;
        if ((mask & X_OK) != 0 && noExec) {
            throw new FuseException(Errno.EACCES);
        }
    }

    @Override
    public StatFs statfs(Request request, long nodeId) {
        return new StatFs(0, 0, 0, 0, 0, 4096, Name.MAX_LENGTH, 4096);
    }

    // ---- files ------------------------------------------------------------------------------

    @Override
    public OpenReply open(Request request, long nodeId, int flags) throws FuseException {
        if (kernelOpensFiles()) {
            // The kernel remembers this and opens files itself from now on (KEEP_CACHE, handle 0).
            throw new FuseException(Errno.ENOSYS);
        }
        Inode inode = inode(nodeId);
        if ((flags & O_ACCMODE) != 0 || (flags & O_TRUNC) != 0) {
            throw new FuseException(Errno.EROFS);
        }
        PassthroughOpens decider = passthrough;
        if (decider != null && inode.node instanceof FileNode file && decider.covers(file.size())) {
            int backingId = decider.open(inode.id, file.digest(), file.size());
            if (backingId > 0) {
                long handle = nextHandle.getAndIncrement();
                inode.opened();
                passthroughHandles.put(handle, inode);
                return OpenReply.passthrough(handle, backingId);
            }
            OpenReply reply;
            try {
                reply = openThroughPageCache(inode);
            } catch (FuseException | RuntimeException e) {
                decider.release(inode.id);
                throw e;
            }
            decider.openedThroughPageCache(inode.id, file.digest(), file.size());
            return reply;
        }
        return openThroughPageCache(inode);
    }

    private OpenReply openThroughPageCache(Inode inode) throws FuseException {
        OpenFile opened = openFile(inode);
        long handle = nextHandle.getAndIncrement();
        inode.opened();
        openFiles.put(handle, opened);
        return new OpenReply(handle, OpenReply.KEEP_CACHE);
    }

    private OpenFile openFile(Inode inode) throws FuseException {
        if (!(inode.node instanceof FileNode file)) {
            throw new FuseException(inode.node instanceof SymlinkNode ? Errno.EINVAL : Errno.EISDIR);
        }
        filesAhead(inode);
        return new OpenFile(inode, openBlob(file), file.size(), options.readAheadBytes(), blobLatency::slow);
    }

    /** Tells the directory's read-ahead across its files that this one is opened (see {@link FilesAhead}). */
    private void filesAhead(Inode file) {
        Inode dir = file.lookedUpIn;
        int index = file.indexInParent;
        if (dir == null || index < 0) {
            return;
        }
        CompletableFuture<Directory> loaded = dir.listing();
        Directory listing = loaded != null && loaded.isDone() && !loaded.isCompletedExceptionally() ? loaded.join() : null;
        if (listing != null && index < listing.entryCount() && listing.node(index).equals(file.node)) {
            dir.filesAhead().opened(listing, index, blobs);
        }
    }

    private BlobReader openBlob(FileNode file) throws FuseException {
        BlobReader reader;
        try {
            reader = blobLatency.time(() -> blobs.open(file.digest(), file.size())).orElse(null);
        } catch (IOException | RuntimeException e) {
            throw eio(file.digest(), "blob " + file.digest() + " unreadable: " + e.getMessage());
        }
        if (reader == null) {
            throw eio(file.digest(), "blob " + file.digest() + " missing from the blob service");
        }
        if (reader.size() != file.size()) {
            closeQuietly(reader);
            throw eio(file.digest(), "blob " + file.digest() + " has " + reader.size() + " bytes, its file node says " + file.size());
        }
        options.accessed().accept(file);
        return reader;
    }

    @Override
    public void read(Request request, long nodeId, long fileHandle, long offset, ByteBuffer dst) throws FuseException {
        if (offset < 0) {
            throw new FuseException(Errno.EINVAL);
        }
        if (fileHandle != 0) {
            OpenFile file = openFiles.get(fileHandle);
            if (file == null) {
                throw new FuseException(Errno.EBADF);
            }
            read(file, offset, dst);
            return;
        }
        OpenFile file = readers.acquire(inode(nodeId), this::openFile);
        try {
            read(file, offset, dst);
        } finally {
            readers.release(file);
        }
    }

    private void read(OpenFile file, long offset, ByteBuffer dst) throws FuseException {
        int start = dst.position();
        boolean sequential;
        try {
            sequential = blobLatency.time(() -> file.read(offset, dst));
        } catch (IOException | RuntimeException e) {
            B3Digest digest = ((FileNode) file.inode.node).digest();
            throw eio(digest, "blob " + digest + " unreadable at offset " + offset + ": " + e.getMessage());
        }
        kernelCache.afterRead(file.inode.id, file, offset, offset + dst.position() - start, sequential);
    }

    @Override
    public void release(Request request, long nodeId, long fileHandle) {
        Inode passthroughInode = passthroughHandles.remove(fileHandle);
        if (passthroughInode != null) {
            passthrough.release(passthroughInode.id);
            inodes.closed(passthroughInode);
            return;
        }
        OpenFile file = openFiles.get(fileHandle);
        if (file != null) {
            closeQuietly(file);
            PassthroughOpens decider = passthrough;
            if (decider != null && decider.covers(file.size())) {
                decider.release(file.inode.id);
            }
            inodes.closed(file.inode);
            // Last: once openFileCount() has fallen, the node's passthrough state has too.
            openFiles.remove(fileHandle);
        }
    }

    // ---- directories ------------------------------------------------------------------------

    @Override
    public OpenReply opendir(Request request, long nodeId) throws FuseException {
        Inode inode = inode(nodeId);
        if (kernelOpensDirectories()) {
            // The kernel remembers this and opens directories itself from now on (CACHE_DIR, handle 0).
            throw new FuseException(Errno.ENOSYS);
        }
        if (inode == root) {
            if (!options.listRoot()) {
                throw new FuseException(Errno.EPERM, "listing the mount root needs --list-root");
            }
            long handle = nextHandle.getAndIncrement();
            rootListings.put(handle, new RootListing(roots));
            // No CACHE_DIR: the set of roots changes while mounted.
            return new OpenReply(handle, 0);
        }
        if (!(inode.node instanceof DirectoryNode)) {
            throw new FuseException(Errno.ENOTDIR);
        }
        listing(inode); // fail here (EIO) rather than in the first readdir
        inode.opened();
        return new OpenReply(0, OpenReply.KEEP_CACHE | OpenReply.CACHE_DIR);
    }

    /**
     * Directories are opened by the kernel unless the root may be listed: a kernel-opened directory
     * is cached (CACHE_DIR) with no way for us to refresh it, and the root listing changes.
     */
    private boolean kernelOpensFiles() {
        return options.zeroMessageOpens() && plainCopies == null;
    }

    private boolean kernelOpensDirectories() {
        return options.zeroMessageOpens() && !options.listRoot();
    }

    @Override
    public void readdir(Request request, long nodeId, long fileHandle, long offset, boolean plus, DirectorySink sink)
            throws FuseException {
        Inode dir = inode(nodeId);
        if (dir == root) {
            readRoots(fileHandle, offset, plus, sink);
            return;
        }
        if (!(dir.node instanceof DirectoryNode)) {
            throw new FuseException(Errno.ENOTDIR);
        }
        Directory listing = listing(dir);
        if (!addDots(dir, offset, sink)) {
            return;
        }
        boolean filesWithLookups = plus && listingAttributes.filesWanted();
        for (long i = Math.max(offset, 2) - 2; i < listing.entryCount(); i++) {
            int index = (int) i;
            Node node = listing.node(index);
            // READDIRPLUS: subdirectories always with their lookup, files and symlinks only when wanted.
            boolean lookup = plus && (filesWithLookups || node instanceof DirectoryNode);
            if (plus && !lookup) {
                dir.markListedBare();
            }
            if (!add(dir, listing.name(index), node, index + 3, index, FOREVER, lookup, sink, null)) {
                return;
            }
        }
    }

    /** "." (cookie 1) and ".." (cookie 2) unless {@code offset} is past them; false if the sink is full. */
    private static boolean addDots(Inode dir, long offset, DirectorySink sink) {
        if (offset < 1 && !addDot(DOT, dir.ino, 1, sink)) {
            return false;
        }
        return offset >= 2 || addDot(DOT_DOT, dir.parentIno, 2, sink);
    }

    /**
     * Dot entries go out as plain entries also in READDIRPLUS (a zeroed entry part, so they are no
     * lookups) with their real inode number: glibc's readdir skips entries whose d_ino is 0.
     */
    private static boolean addDot(byte[] name, long ino, long next, DirectorySink sink) {
        return sink.add(ino, name, NodeAttributes.DT_DIR, next);
    }

    /**
     * Adds one entry; with {@code lookup} it carries one, undone if the sink does not take it, and
     * its node id goes to {@code given} if that is not null.
     */
    private boolean add(Inode dir, Name name, Node node, long next, int index, long entryValidNanos, boolean lookup, DirectorySink sink,
            List<Long> given) {
        if (!lookup) {
            return sink.add(InodeNumbers.of(node), name.bytesUnsafe(), NodeAttributes.direntType(node), next);
        }
        Inode child = reference(dir, name, node, index);
        if (sink.addPlus(entry(child, entryValidNanos), name.bytesUnsafe(), next)) {
            if (given != null) {
                given.add(child.id);
            }
            return true;
        }
        inodes.forget(child.id, 1);
        return false;
    }

    private void readRoots(long fileHandle, long offset, boolean plus, DirectorySink sink) throws FuseException {
        RootListing listing = rootListings.get(fileHandle);
        if (listing == null) {
            throw new FuseException(options.listRoot() ? Errno.EBADF : Errno.EPERM);
        }
        if (!addDots(root, offset, sink)) {
            return;
        }
        // The roots come from a service that may fail part way (a network error, a damaged
        // record): the reply is then an error and the kernel never sees the entries already
        // added, so their lookups are undone, or their inodes would live as long as the mount.
        List<Long> given = plus ? new ArrayList<>() : null;
        try {
            listing.list(Math.max(offset, 2) - 2,
                    (named, next) -> add(root, named.name(), named.node(), next + 2, -1, rootTtlNanos, plus, sink, given));
        } catch (IOException | RuntimeException e) {
            if (given != null) {
                given.forEach(id -> inodes.forget(id, 1));
            }
            problems.report("roots: " + e.getMessage(), "listing roots failed: " + e.getMessage());
            throw new FuseException(Errno.EIO);
        }
    }

    @Override
    public void releasedir(Request request, long nodeId, long fileHandle) {
        if (nodeId == ROOT_ID) {
            RootListing listing = rootListings.remove(fileHandle);
            if (listing != null) {
                listing.close();
            }
            return;
        }
        Inode inode = inodes.get(nodeId);
        if (inode != null) {
            inodes.closed(inode);
        }
    }

    /**
     * The contents of a directory, fetched on first need and kept while its node id lives.
     * Concurrent first uses share one fetch; a failed fetch is retried by the next operation.
     */
    private Directory listing(Inode dir) throws FuseException {
        while (true) {
            CompletableFuture<Directory> loading = dir.listing();
            if (loading == null) {
                var mine = new CompletableFuture<Directory>();
                if (!dir.casListing(null, mine)) {
                    continue;
                }
                try {
                    mine.complete(load((DirectoryNode) dir.node));
                } catch (FuseException | RuntimeException | Error e) {
                    // Whatever it was, the next operation fetches again: a fetch left pending
                    // would hold every later one on this directory for good.
                    dir.casListing(mine, null);
                    mine.completeExceptionally(e);
                    if (e instanceof Error error) {
                        throw error;
                    }
                }
                loading = mine;
            }
            try {
                return loading.join();
            } catch (CompletionException e) {
                throw e.getCause() instanceof FuseException f ? f : new FuseException(Errno.EIO);
            }
        }
    }

    private Directory load(DirectoryNode node) throws FuseException {
        B3Digest digest = node.digest();
        if (digest.equals(EMPTY_DIRECTORY)) {
            if (node.size() != 0) { // as for any other Directory below: the node that claims the size is checked
                throw eio(digest, "directory " + digest + " has size 0, its node says " + node.size());
            }
            return Directory.empty();
        }
        Directory directory;
        try {
            directory = directoryLatency.time(() -> directories.get(digest)).orElse(null);
        } catch (IOException | RuntimeException e) {
            throw eio(digest, "directory " + digest + " unreadable: " + e.getMessage());
        }
        if (directory == null) {
            throw eio(digest, "directory " + digest + " missing from the directory service");
        }
        // The services verify what they return against the digest; the size is checked here
        // because the node that claims it comes from a different Directory.
        if (directory.size() != node.size()) {
            throw eio(digest, "directory " + digest + " has size " + directory.size() + ", its node says " + node.size());
        }
        options.accessed().accept(node);
        return directory;
    }

    // ---- extended attributes ----------------------------------------------------------------

    @Override
    public byte[] getxattr(Request request, long nodeId, byte[] name) throws FuseException {
        Inode inode = inode(nodeId);
        if (!options.xattrs()) {
            throw new FuseException(Errno.ENOSYS);
        }
        String own = NodeAttributes.digestXattr(inode.node);
        if (own != null && own.equals(new String(name, StandardCharsets.ISO_8859_1))) {
            return NodeAttributes.digestOf(inode.node).toString().getBytes(StandardCharsets.US_ASCII);
        }
        throw new FuseException(Errno.ENODATA);
    }

    @Override
    public byte[] listxattr(Request request, long nodeId) throws FuseException {
        Inode inode = inode(nodeId);
        if (!options.xattrs()) {
            throw new FuseException(Errno.ENOSYS);
        }
        String own = NodeAttributes.digestXattr(inode.node);
        return own == null ? new byte[0] : (own + '\0').getBytes(StandardCharsets.US_ASCII);
    }

    // ---- hand-over to another process (castore mount --take-over) ----------------------------

    @Override
    public byte[] handOverState() throws IOException {
        if (passthrough != null) {
            // Backing ids were registered with the kernel by this process for its open files.
            throw new IOException("a mount with --passthrough cannot be handed over");
        }
        List<MountState.HeldNode> nodes = new ArrayList<>(inodes.size());
        for (Inode inode : inodes.all()) {
            nodes.add(held(inode));
        }
        List<MountState.OpenHandle> open = new ArrayList<>();
        openFiles.forEach((handle, file) -> open.add(new MountState.OpenHandle(handle, file.inode.id)));
        return new MountState(inodes.nextId(), nextHandle.get(), nodes, open, List.copyOf(rootListings.keySet())).encode();
    }

    @Override
    public void takeOverState(byte[] encoded) throws IOException {
        MountState state = MountState.decode(encoded);
        checkStoreHasTheRoots(state);
        for (MountState.HeldNode held : state.nodes()) {
            adopt(held, state.nextNodeId());
        }
        nextHandle.accumulateAndGet(state.nextHandle(), Math::max);
        for (MountState.OpenHandle handle : state.openFiles()) {
            Inode inode = inodes.get(handle.nodeId());
            if (inode == null) {
                throw new IOException("the mount state has a handle on node id " + handle.nodeId() + ", which it does not hold");
            }
            try {
                openFiles.put(handle.handle(), openFile(inode)); // its open is counted in the inode already
            } catch (FuseException e) {
                throw new IOException("a file open in the mount cannot be opened here: " + e.getMessage());
            }
        }
        for (long handle : state.rootListings()) {
            rootListings.put(handle, new RootListing(roots)); // a listing resumes at the kernel's cookie
        }
    }

    // One node per call (see MountState.write): compiled after a few hundred of the many.
    private static MountState.HeldNode held(Inode inode) {
        long[] counts = inode.counts();
        return inode.key instanceof PlacedDirectory placed
                ? new MountState.HeldNode(inode.id, inode.parentIno, counts[0], (int) counts[1], inode.listedBare(),
                        placed.parentId(), placed.name(), inode.node)
                : new MountState.HeldNode(inode.id, inode.parentIno, counts[0], (int) counts[1], inode.listedBare(),
                        0, null, inode.node);
    }

    private void adopt(MountState.HeldNode held, long nextNodeId) throws IOException {
        if (held.id() <= ROOT_ID) {
            throw new IOException("the mount state names node id " + held.id());
        }
        Object key = held.placedIn() != 0 && held.node() instanceof DirectoryNode d
                ? new PlacedDirectory(held.placedIn(), held.name(), d) : held.node();
        Inode inode = new Inode(held.id(), key, held.node(), InodeNumbers.of(held.node()), held.parentIno());
        inode.restoreCounts(held.lookups(), held.opens());
        if (held.listedBare()) {
            inode.markListedBare();
        }
        inodes.adopt(inode, nextNodeId);
    }

    /**
     * The node ids the kernel holds name content of the store the mount served: a take-over with
     * another store would answer them with EIO. The entries of the mount root the kernel holds
     * (a few) are looked for in this store; a missing one refuses the take-over, which leaves the
     * mount to the process that served it.
     */
    private void checkStoreHasTheRoots(MountState state) throws IOException {
        for (MountState.HeldNode held : state.nodes()) {
            if (held.parentIno() != InodeNumbers.ROOT) {
                continue;
            }
            boolean present = switch (held.node()) {
                case DirectoryNode d -> directories.has(d.digest());
                case FileNode f -> blobs.has(f.digest());
                case SymlinkNode s -> true;
            };
            if (!present) {
                String what = held.placedIn() != 0 ? "root '" + held.name() + "' (directory " + ((DirectoryNode) held.node()).digest() + ")"
                        : "a root file (blob " + ((FileNode) held.node()).digest() + ")";
                throw new IOException("this store lacks " + what + ", which the mount serves: take over with the store it was mounted from");
            }
        }
    }

    // ---- lifecycle and helpers --------------------------------------------------------------

    /** The session ended: the kernel dropped every reference, so drop every node id and handle. */
    @Override
    public void destroy() {
        openFiles.values().forEach(CastoreFileSystem::closeQuietly);
        openFiles.clear();
        readers.clear();
        rootListings.values().forEach(RootListing::close);
        rootListings.clear();
        rootAnswers.close();
        inodes.clear();
    }

    private Inode inode(long nodeId) throws FuseException {
        if (nodeId == ROOT_ID) {
            return root;
        }
        Inode inode = inodes.get(nodeId);
        if (inode == null) {
            throw new FuseException(Errno.ENOENT, "unknown node id " + nodeId);
        }
        return inode;
    }

    private FuseException eio(B3Digest digest, String problem) {
        problems.report(digest, problem);
        return new FuseException(Errno.EIO, problem);
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // Closing a reader of immutable data: nothing to recover.
        }
    }
}
