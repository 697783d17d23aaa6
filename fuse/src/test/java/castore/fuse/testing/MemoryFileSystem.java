package castore.fuse.testing;

import castore.fuse.api.Attr;
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

import castore.fuse.sys.Libc;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A small immutable tree held in memory, for exercising the FUSE layer through the kernel. It
 * counts lookups (LOOKUP and accepted READDIRPLUS entries) against FORGETs, open handles, and
 * how often each operation arrived, so tests can check the protocol bookkeeping. Reads of a file
 * can be held at a gate to show that a slow request does not block the others.
 */
public final class MemoryFileSystem implements FileSystem {
    private final Map<Long, Node> nodes;
    private volatile byte[] handOverState;
    private volatile byte[] takenState;
    private final long ttlNanos;
    private final Set<Operation> offloaded;
    private final Map<Long, CountDownLatch> readGates = new ConcurrentHashMap<>();
    private final Map<String, CountDownLatch> lookupGates = new ConcurrentHashMap<>();
    /** Gated lookups that mayBlock does not announce: a quick request that blocks after all. */
    private volatile boolean lookupGatesUnannounced;
    private final AtomicInteger blockedReads = new AtomicInteger();
    private final Map<Long, AtomicLong> lookups = new ConcurrentHashMap<>();
    private final Map<Long, Long> openHandles = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final AtomicLongArray calls = new AtomicLongArray(Operation.values().length);
    private final Set<String> callingThreads = ConcurrentHashMap.newKeySet();
    private volatile InitInfo initInfo;
    private volatile KernelCache kernelCache = KernelCache.NONE;
    private volatile boolean destroyed;
    /** Local files the kernel reads in place of a node's content (passthrough), by node id. */
    private final Map<Long, Path> backed;
    private volatile BackingFiles backingFiles;
    /** Backing id per node while open files use it, with their count. */
    private final Map<Long, long[]> backingIds = new ConcurrentHashMap<>();

    /** How LSEEK (SEEK_DATA / SEEK_HOLE) is answered; all but DEFAULT make files say they take no blocks, as if all holes. */
    public enum Seek {
        /** ENOSYS: the kernel answers for a dense file. */
        DEFAULT,
        /** EINVAL, as a file system that refuses SEEK_DATA. */
        REFUSED,
        /** Wrong answers: data at offset 0 whatever the offset asked, a hole at 1 MiB. */
        WRONG
    }

    private final Seek seek;

    private MemoryFileSystem(Map<Long, Node> nodes, long ttlNanos, Set<Operation> offloaded, Map<Long, Path> backed,
                             Seek seek) {
        this.nodes = nodes;
        this.ttlNanos = ttlNanos;
        this.offloaded = offloaded;
        this.backed = backed;
        this.seek = seek;
    }

    private Attr attr(Node n) {
        Attr a = n.attr();
        return seek != Seek.DEFAULT ? new Attr(a.ino(), a.size(), 0, a.atime(), a.mtime(), a.ctime(), a.atimeNsec(), a.mtimeNsec(),
                a.ctimeNsec(), a.mode(), a.nlink(), a.uid(), a.gid(), a.rdev(), a.blksize()) : a;
    }

    @Override
    public long lseek(Request request, long nodeId, long fileHandle, long offset, int whence) throws FuseException {
        return switch (seek) {
            case DEFAULT -> throw new FuseException(Errno.ENOSYS);
            case REFUSED -> throw new FuseException(Errno.EINVAL);
            case WRONG -> whence == 3 /* SEEK_DATA */ ? 0 : 1 << 20;
        };
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A node of the tree; directories hold their children by name, sorted. */
    private record Node(long id, long parent, int mode, byte[] content, TreeMap<String, Long> children,
                        Map<String, byte[]> xattrs) {
        boolean isDirectory() {
            return (mode & Attr.S_IFMT) == Attr.S_IFDIR;
        }

        boolean isSymlink() {
            return (mode & Attr.S_IFMT) == Attr.S_IFLNK;
        }

        Attr attr() {
            long size = isDirectory() ? children.size() : content.length;
            return Attr.of(id, mode, size, isDirectory() ? 2 : 1, 0, 0);
        }
    }

    /** Builds a tree from paths relative to the root ("a/b/c"); parents are made as needed. */
    public static final class Builder {
        private final Map<Long, Node> nodes = new TreeMap<>();
        private long nextId = FileSystem.ROOT_ID + 1;
        private Duration ttl = Duration.ofHours(1);
        private Seek seek = Seek.DEFAULT;
        private final Set<Operation> offloaded = EnumSet.noneOf(Operation.class);
        private final Map<Long, Path> backed = new TreeMap<>();

        private Builder() {
            nodes.put(FileSystem.ROOT_ID, new Node(FileSystem.ROOT_ID, FileSystem.ROOT_ID, Attr.S_IFDIR | 0555,
                    new byte[0], new TreeMap<>(), new TreeMap<>()));
        }

        public Builder file(String path, byte[] content) {
            add(path, Attr.S_IFREG | 0444, content);
            return this;
        }

        public Builder file(String path, String content) {
            return file(path, content.getBytes(StandardCharsets.UTF_8));
        }

        public Builder executable(String path, byte[] content) {
            add(path, Attr.S_IFREG | 0555, content);
            return this;
        }

        public Builder symlink(String path, String target) {
            add(path, Attr.S_IFLNK | 0777, target.getBytes(StandardCharsets.UTF_8));
            return this;
        }

        public Builder directory(String path) {
            directoryAt(path);
            return this;
        }

        public Builder xattr(String path, String name, byte[] value) {
            nodes.get(find(path)).xattrs().put(name, value);
            return this;
        }

        /** How long the kernel may cache entries and attributes (default one hour). */
        public Builder ttl(Duration ttl) {
            this.ttl = ttl;
            return this;
        }

        /** Operations that {@link FileSystem#mayBlock} reports as blocking (served on virtual threads). */
        public Builder offload(Operation... ops) {
            offloaded.addAll(List.of(ops));
            return this;
        }

        /**
         * Serves {@code path} (a file added before) through FUSE passthrough from the local file
         * {@code backing}, which must hold the same bytes: the filesystem then asks INIT for
         * passthrough, and opens of {@code path} are answered with a backing id.
         */
        public Builder passthrough(String path, Path backing) {
            backed.put(find(path), backing);
            return this;
        }

        /** How LSEEK is answered; all but {@link Seek#DEFAULT} also make files say they take no blocks on disk. */
        public Builder seek(Seek seek) {
            this.seek = seek;
            return this;
        }

        public MemoryFileSystem build() {
            return new MemoryFileSystem(Map.copyOf(nodes), ttl.toNanos(), Set.copyOf(offloaded), Map.copyOf(backed), seek);
        }

        private long find(String path) {
            long id = FileSystem.ROOT_ID;
            for (String part : path.split("/")) {
                Long child = nodes.get(id).children().get(part);
                if (child == null) {
                    throw new IllegalArgumentException("no " + path);
                }
                id = child;
            }
            return id;
        }

        private long directoryAt(String path) {
            long id = FileSystem.ROOT_ID;
            if (path.isEmpty()) {
                return id;
            }
            for (String part : path.split("/")) {
                Node dir = nodes.get(id);
                Long child = dir.children().get(part);
                if (child == null) {
                    child = nextId++;
                    nodes.put(child, new Node(child, id, Attr.S_IFDIR | 0555, new byte[0], new TreeMap<>(), new TreeMap<>()));
                    dir.children().put(part, child);
                } else if (!nodes.get(child).isDirectory()) {
                    throw new IllegalArgumentException(part + " in " + path + " is not a directory");
                }
                id = child;
            }
            return id;
        }

        private void add(String path, int mode, byte[] content) {
            int slash = path.lastIndexOf('/');
            long parent = directoryAt(slash < 0 ? "" : path.substring(0, slash));
            String name = path.substring(slash + 1);
            if (nodes.get(parent).children().containsKey(name)) {
                throw new IllegalArgumentException(path + " exists");
            }
            long id = nextId++;
            nodes.put(id, new Node(id, parent, mode, content.clone(), new TreeMap<>(), new TreeMap<>()));
            nodes.get(parent).children().put(name, id);
        }
    }

    // ---- what tests look at ----

    /** The node id of a path relative to the root ("" is the root). */
    public long nodeId(String path) {
        long id = ROOT_ID;
        if (path.isEmpty()) {
            return id;
        }
        for (String part : path.split("/")) {
            id = nodes.get(id).children().get(part);
        }
        return id;
    }

    /** Lookup references the kernel holds on a node: lookups minus forgets. */
    public long lookupCount(long nodeId) {
        AtomicLong n = lookups.get(nodeId);
        return n == null ? 0 : n.get();
    }

    /** Lookup references on all nodes together. */
    public long totalLookupCount() {
        return lookups.values().stream().mapToLong(AtomicLong::get).sum();
    }

    /** How many times an operation arrived. */
    public long calls(Operation op) {
        return calls.get(op.ordinal());
    }

    /** Names of the threads that called the filesystem (reader platform threads, virtual workers). */
    public Set<String> callingThreads() {
        return Set.copyOf(callingThreads);
    }

    /** Forgets the threads seen so far. */
    public void clearCallingThreads() {
        callingThreads.clear();
    }

    public int openHandles() {
        return openHandles.size();
    }

    public InitInfo initInfo() {
        return initInfo;
    }

    /** What the transport gave {@link #init(InitInfo, KernelCache)} to push content into the kernel. */
    public KernelCache kernelCache() {
        return kernelCache;
    }

    @Override
    public void init(InitInfo info, KernelCache cache) {
        kernelCache = cache;
        init(info);
    }

    @Override
    public void init(InitInfo info, KernelCache cache, BackingFiles backing) {
        backingFiles = backing;
        init(info, cache);
    }

    @Override
    public boolean wantsPassthrough() {
        return !backed.isEmpty();
    }

    /** What INIT gave for passthrough (null if not negotiated). */
    public BackingFiles backingFiles() {
        return backingFiles;
    }

    /**
     * Lets this filesystem be handed over, giving {@code state} as its state (node ids need none:
     * the same tree built again has the same ones). Without it, a hand-over is refused.
     */
    public void handsOver(byte[] state) {
        this.handOverState = state;
    }

    @Override
    public byte[] handOverState() throws java.io.IOException {
        byte[] state = handOverState;
        return state != null ? state : FileSystem.super.handOverState();
    }

    @Override
    public void takeOverState(byte[] state) {
        takenState = state;
    }

    /** The state {@link #takeOverState} took; null if none. */
    public byte[] takenState() {
        return takenState;
    }

    public boolean isDestroyed() {
        return destroyed;
    }

    /** Holds every READ of {@code path} until {@code gate} opens; such reads report mayBlock. */
    public void gateReads(String path, CountDownLatch gate) {
        readGates.put(nodeId(path), gate);
    }

    /** How many READs wait at a gate right now. */
    public int blockedReads() {
        return blockedReads.get();
    }

    /** Holds every LOOKUP of {@code name} (in any directory) until {@code gate} opens. */
    public void gateLookups(String name, CountDownLatch gate) {
        lookupGates.put(name, gate);
    }

    /** As {@link #gateLookups}, but {@link #mayBlock} still says LOOKUP is quick: a wrong prediction. */
    public void gateLookupsUnannounced(String name, CountDownLatch gate) {
        lookupGatesUnannounced = true;
        lookupGates.put(name, gate);
    }

    private static void await(CountDownLatch gate) throws FuseException {
        try {
            gate.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new FuseException(Errno.EINTR);
        }
    }

    // ---- FileSystem ----

    private Node node(Operation op, long nodeId) throws FuseException {
        calls.incrementAndGet(op.ordinal());
        Thread t = Thread.currentThread();
        callingThreads.add(t.isVirtual() ? "virtual" : t.getName());
        Node n = nodes.get(nodeId);
        if (n == null) {
            throw new FuseException(Errno.EIO, "no node " + nodeId);
        }
        return n;
    }

    private Entry entry(Node n) {
        return new Entry(n.id(), 0, attr(n), ttlNanos, ttlNanos);
    }

    @Override
    public void init(InitInfo info) {
        initInfo = info;
    }

    @Override
    public void destroy() {
        destroyed = true;
    }

    @Override
    public boolean mayBlock(Operation op, long nodeId) {
        return offloaded.contains(op) || op == Operation.READ && readGates.containsKey(nodeId)
                || op == Operation.LOOKUP && !lookupGates.isEmpty() && !lookupGatesUnannounced;
    }

    @Override
    public Entry lookup(Request request, long parent, byte[] name) throws FuseException {
        Node dir = node(Operation.LOOKUP, parent);
        if (!dir.isDirectory()) {
            throw new FuseException(Errno.ENOTDIR);
        }
        String n = new String(name, StandardCharsets.UTF_8);
        CountDownLatch gate = lookupGates.get(n);
        if (gate != null) {
            await(gate);
        }
        Long child = dir.children().get(n);
        if (child == null) {
            throw new FuseException(Errno.ENOENT);
        }
        lookups.computeIfAbsent(child, k -> new AtomicLong()).incrementAndGet();
        return entry(nodes.get(child));
    }

    @Override
    public void forget(long nodeId, long nlookup) {
        AtomicLong n = lookups.get(nodeId);
        if (n == null || n.addAndGet(-nlookup) < 0) {
            throw new IllegalStateException("forget of " + nlookup + " on node " + nodeId + " below zero");
        }
    }

    @Override
    public AttrReply getattr(Request request, long nodeId) throws FuseException {
        return new AttrReply(attr(node(Operation.GETATTR, nodeId)), ttlNanos);
    }

    @Override
    public byte[] readlink(Request request, long nodeId) throws FuseException {
        Node n = node(Operation.READLINK, nodeId);
        if (!n.isSymlink()) {
            throw new FuseException(Errno.EINVAL);
        }
        return n.content().clone();
    }

    @Override
    public OpenReply open(Request request, long nodeId, int flags) throws FuseException {
        Node n = node(Operation.OPEN, nodeId);
        if (n.isDirectory()) {
            throw new FuseException(Errno.EISDIR);
        }
        long fh = nextHandle.getAndIncrement();
        Path backing = backed.get(nodeId);
        if (backing != null && backingFiles != null) {
            int id = backingIdFor(nodeId, backing);
            openHandles.put(fh, nodeId);
            return OpenReply.passthrough(fh, id);
        }
        openHandles.put(fh, nodeId);
        return new OpenReply(fh, OpenReply.KEEP_CACHE);
    }

    /** One backing id per node while any open file uses it (the kernel refuses a second one). */
    private int backingIdFor(long nodeId, Path backing) throws FuseException {
        synchronized (backingIds) {
            long[] idAndOpens = backingIds.get(nodeId);
            if (idAndOpens == null) {
                int fd;
                try (Arena arena = Arena.ofConfined()) {
                    fd = Libc.open(Libc.newCallState(arena), arena.allocateFrom(backing.toString()), Libc.O_RDONLY | Libc.O_CLOEXEC);
                    if (fd < 0) {
                        throw new FuseException(-fd);
                    }
                    try {
                        idAndOpens = new long[] {backingFiles.open(fd), 0};
                    } finally {
                        Libc.close(Libc.newCallState(arena), fd);
                    }
                }
                backingIds.put(nodeId, idAndOpens);
            }
            idAndOpens[1]++;
            return (int) idAndOpens[0];
        }
    }

    @Override
    public void read(Request request, long nodeId, long fileHandle, long offset, ByteBuffer dst) throws FuseException {
        Node n = node(Operation.READ, nodeId);
        CountDownLatch gate = readGates.get(nodeId);
        if (gate != null) {
            blockedReads.incrementAndGet();
            try {
                await(gate);
            } finally {
                blockedReads.decrementAndGet();
            }
        }
        if (offset < n.content().length) {
            dst.put(n.content(), (int) offset, (int) Math.min(dst.remaining(), n.content().length - offset));
        }
    }

    @Override
    public void release(Request request, long nodeId, long fileHandle) {
        calls.incrementAndGet(Operation.RELEASE.ordinal());
        openHandles.remove(fileHandle);
        synchronized (backingIds) {
            long[] idAndOpens = backingIds.get(nodeId);
            if (idAndOpens != null && --idAndOpens[1] == 0) {
                backingIds.remove(nodeId);
                backingFiles.close((int) idAndOpens[0]);
            }
        }
    }

    @Override
    public OpenReply opendir(Request request, long nodeId) throws FuseException {
        Node n = node(Operation.OPENDIR, nodeId);
        if (!n.isDirectory()) {
            throw new FuseException(Errno.ENOTDIR);
        }
        long fh = nextHandle.getAndIncrement();
        openHandles.put(fh, nodeId);
        return new OpenReply(fh, OpenReply.KEEP_CACHE | OpenReply.CACHE_DIR);
    }

    /** Cookies: 1 after ".", 2 after "..", 3 + i after the i-th child. */
    @Override
    public void readdir(Request request, long nodeId, long fileHandle, long offset, boolean plus, DirectorySink sink)
            throws FuseException {
        Node dir = node(plus ? Operation.READDIRPLUS : Operation.READDIR, nodeId);
        if (offset < 1 && !sink.add(dir.id(), dot(1), Attr.S_IFDIR >>> 12, 1)) {
            return;
        }
        if (offset < 2 && !sink.add(dir.parent(), dot(2), Attr.S_IFDIR >>> 12, 2)) {
            return;
        }
        List<Map.Entry<String, Long>> children = new ArrayList<>(dir.children().entrySet());
        for (int i = (int) Math.max(0, offset - 2); i < children.size(); i++) {
            Node child = nodes.get(children.get(i).getValue());
            byte[] name = children.get(i).getKey().getBytes(StandardCharsets.UTF_8);
            long next = 3L + i;
            if (plus) {
                if (!sink.addPlus(entry(child), name, next)) {
                    return;
                }
                lookups.computeIfAbsent(child.id(), k -> new AtomicLong()).incrementAndGet();
            } else if (!sink.add(child.id(), name, child.attr().direntType(), next)) {
                return;
            }
        }
    }

    private static byte[] dot(int n) {
        return n == 1 ? new byte[]{'.'} : new byte[]{'.', '.'};
    }

    @Override
    public void releasedir(Request request, long nodeId, long fileHandle) {
        calls.incrementAndGet(Operation.RELEASEDIR.ordinal());
        openHandles.remove(fileHandle);
    }

    @Override
    public StatFs statfs(Request request, long nodeId) throws FuseException {
        node(Operation.STATFS, nodeId);
        long bytes = nodes.values().stream().mapToLong(n -> n.content().length).sum();
        return new StatFs((bytes + 4095) / 4096, 0, 0, nodes.size(), 0, 4096, 255, 4096);
    }

    @Override
    public byte[] getxattr(Request request, long nodeId, byte[] name) throws FuseException {
        byte[] value = node(Operation.GETXATTR, nodeId).xattrs().get(new String(name, StandardCharsets.UTF_8));
        if (value == null) {
            throw new FuseException(Errno.ENODATA);
        }
        return value.clone();
    }

    @Override
    public byte[] listxattr(Request request, long nodeId) throws FuseException {
        ByteArrayOutputStream names = new ByteArrayOutputStream();
        for (String name : node(Operation.LISTXATTR, nodeId).xattrs().keySet()) {
            names.writeBytes(name.getBytes(StandardCharsets.UTF_8));
            names.write(0);
        }
        return names.toByteArray();
    }
}
