package castore.hash;

import castore.model.B3Digest;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

/**
 * The official BLAKE3 C implementation (SIMD with runtime dispatch) through the FFM API.
 *
 * <p>The shared library is a resource of castore-core, built by {@code core/src/main/native/
 * build-blake3.sh} when the C sources are present at build time. On first use it is copied
 * to {@code ~/.cache/castore/native/} under a name holding its SHA-256, so concurrent
 * processes and upgrades never overwrite a library another process has loaded, and loaded
 * from there. If anything fails (no library in the jar, another platform, no native access)
 * {@link #load()} says why and castore uses {@link JavaBlake3}.
 *
 * <p>Calls on heap arrays use critical downcalls, which take the array in place (no copy)
 * and cost little more than a Java call, so small inputs stay cheap; the GC waits while such
 * a call runs, so long heap inputs go in pieces of {@link #CRITICAL_PIECE}. Native memory
 * (mmapped files, direct buffers) of any size goes through ordinary downcalls, during which
 * the GC proceeds even if the call blocks on a page fault.
 */
@SuppressWarnings("restricted") // native access is what this class is for
final class NativeBlake3 implements Blake3.Engine {
    static final String LIBRARY = "libcastore_blake3.so";
    /** Largest heap input hashed in one critical downcall: about 40 µs of hashing. */
    static final int CRITICAL_PIECE = 256 * 1024;
    /** Largest native input hashed by a critical one-shot call (page faults would stall the GC). */
    private static final long CRITICAL_NATIVE_ONE_SHOT = 64 * 1024;

    private static final Linker.Option CRITICAL = Linker.Option.critical(true);
    private static final ValueLayout ADDRESS = ValueLayout.ADDRESS;
    /** size_t on the 64-bit platforms the library is built for. */
    private static final ValueLayout SIZE_T = ValueLayout.JAVA_LONG;

    /** The bound library, or the reason it could not be bound; read once at class initialisation. */
    private static final Binding BINDING = bind();
    // Static finals, so the JIT treats the handles as constants and inlines the downcalls.
    private static final MethodHandle INIT = BINDING.handle("castore_blake3_init", FunctionDescriptor.ofVoid(ADDRESS), CRITICAL);
    private static final MethodHandle UPDATE_CRITICAL = BINDING.handle("castore_blake3_update", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, SIZE_T), CRITICAL);
    private static final MethodHandle UPDATE = BINDING.handle("castore_blake3_update", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, SIZE_T));
    private static final MethodHandle FINALIZE_CRITICAL = BINDING.handle("castore_blake3_finalize", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS), CRITICAL);
    private static final MethodHandle HASH_CRITICAL = BINDING.handle("castore_blake3_hash", FunctionDescriptor.ofVoid(ADDRESS, SIZE_T, ADDRESS), CRITICAL);
    private static final MethodHandle HASH = BINDING.handle("castore_blake3_hash", FunctionDescriptor.ofVoid(ADDRESS, SIZE_T, ADDRESS));
    private static final long STATE_SIZE = BINDING.sizeQuery("castore_blake3_state_size");

    static final NativeBlake3 INSTANCE = new NativeBlake3();

    private NativeBlake3() {
    }

    /** A library looked up from its extracted file, or why not. */
    private record Binding(Path path, SymbolLookup lookup, String problem) {
        MethodHandle handle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
            return lookup == null ? null : Linker.nativeLinker().downcallHandle(lookup.findOrThrow(name), descriptor, options);
        }

        long sizeQuery(String name) {
            if (lookup == null) {
                return -1;
            }
            try {
                return (long) handle(name, FunctionDescriptor.of(SIZE_T)).invokeExact();
            } catch (Throwable t) {
                throw new IllegalStateException("cannot call " + name + " in " + path, t);
            }
        }

        String version() {
            try {
                MemorySegment v = (MemorySegment) handle("castore_blake3_version", FunctionDescriptor.of(ADDRESS)).invokeExact();
                return v.reinterpret(64).getString(0);
            } catch (Throwable t) {
                throw new IllegalStateException("cannot call castore_blake3_version in " + path, t);
            }
        }
    }

    private static Binding bind() {
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("Linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return new Binding(null, null, "no native BLAKE3 for " + os + "/" + arch);
        }
        String resource = "/native/linux-x86_64/" + LIBRARY;
        byte[] library;
        try (InputStream in = NativeBlake3.class.getResourceAsStream(resource)) {
            if (in == null) {
                return new Binding(null, null, "this build has no native BLAKE3 (no " + resource
                        + ": built without gcc or the BLAKE3 C sources, or with -Dcastore.native.skip)");
            }
            library = in.readAllBytes();
        } catch (IOException e) {
            return new Binding(null, null, "cannot read " + resource + ": " + e.getMessage());
        }
        try {
            Path path = extract(library, cacheDirectories());
            SymbolLookup lookup = SymbolLookup.libraryLookup(path, Arena.global());
            // Fail here, not at first use, if a symbol is missing.
            for (String symbol : List.of("castore_blake3_init", "castore_blake3_update", "castore_blake3_finalize",
                    "castore_blake3_hash", "castore_blake3_state_size", "castore_blake3_simd_degree", "castore_blake3_version")) {
                lookup.findOrThrow(symbol);
            }
            return new Binding(path, lookup, null);
        } catch (IOException | RuntimeException | LinkageError e) {
            // IllegalCallerException when native access is denied, UnsatisfiedLinkError, I/O, ...
            return new Binding(null, null, "cannot load native BLAKE3: " + e);
        }
    }

    /** The engine, or the reason why there is none. */
    record Loaded(NativeBlake3 engine, String problem) {
    }

    /** The engine if the library is bound and agrees with the Java reference; computed once by {@link Blake3}. */
    static Loaded load() {
        if (BINDING.problem() != null) {
            return new Loaded(null, BINDING.problem());
        }
        try {
            String mismatch = INSTANCE.selfTest();
            if (mismatch != null) {
                return new Loaded(null, "native BLAKE3 at " + BINDING.path() + " failed its self-test: " + mismatch);
            }
        } catch (RuntimeException | LinkageError e) {
            return new Loaded(null, "native BLAKE3 at " + BINDING.path() + " failed: " + e);
        }
        return new Loaded(INSTANCE, null);
    }

    /** Where to keep the extracted library, best first. */
    private static List<Path> cacheDirectories() {
        List<Path> dirs = new ArrayList<>();
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && xdg.startsWith("/")) {
            dirs.add(Path.of(xdg, "castore", "native"));
        }
        String home = System.getProperty("user.home");
        if (home != null && !home.isEmpty() && !home.equals("?")) {
            dirs.add(Path.of(home, ".cache", "castore", "native"));
        }
        return dirs;
    }

    /**
     * Copies {@code library} to the first usable directory under a content-addressed name and
     * returns its path; an existing file is used only if its bytes are identical. Writes go
     * to a temporary file renamed into place, so readers never see a partial library. Falls
     * back to a fresh temporary file (deleted on exit) when no directory is writable.
     */
    static Path extract(byte[] library, List<Path> directories) throws IOException {
        String name = "libcastore_blake3-" + sha256Prefix(library) + ".so";
        for (Path dir : directories) {
            try {
                Path target = dir.resolve(name);
                if (Files.isRegularFile(target) && Arrays.equals(Files.readAllBytes(target), library)) {
                    return target;
                }
                Files.createDirectories(dir);
                Path tmp = Files.createTempFile(dir, name, ".tmp");
                try {
                    Files.write(tmp, library);
                    try {
                        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                    } catch (AtomicMoveNotSupportedException e) {
                        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                    }
                } finally {
                    Files.deleteIfExists(tmp);
                }
                return target;
            } catch (IOException | SecurityException e) {
                // Not writable: try the next place.
            }
        }
        Path tmp = Files.createTempFile(name, null);
        tmp.toFile().deleteOnExit();
        Files.write(tmp, library);
        return tmp;
    }

    private static String sha256Prefix(byte[] bytes) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(bytes);
            return HexFormat.of().formatHex(d, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JDK", e);
        }
    }

    /** Compares a few inputs across chunk and SIMD boundaries with the Java reference; null if all agree. */
    private String selfTest() {
        byte[] input = new byte[17 * JavaBlake3.CHUNK_LEN + 3];
        for (int i = 0; i < input.length; i++) {
            input[i] = (byte) (i % 251);
        }
        for (int length : new int[] {0, 1, 1024, 1025, 16 * 1024, input.length}) {
            B3Digest expected = JavaBlake3.INSTANCE.digest(input, 0, length);
            B3Digest actual = digest(input, 0, length);
            if (!expected.equals(actual)) {
                return "length " + length + ": " + actual.toHex() + " != " + expected.toHex();
            }
        }
        return null;
    }

    String describe() {
        return "BLAKE3 C " + BINDING.version() + ", " + BINDING.sizeQuery("castore_blake3_simd_degree") + "-way SIMD, " + BINDING.path();
    }

    @Override
    public Blake3.Implementation implementation() {
        return Blake3.Implementation.NATIVE;
    }

    @Override
    public B3Digest digest(byte[] data, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.length);
        if (length > CRITICAL_PIECE) {
            Hasher h = new Hasher();
            h.update(data, offset, length);
            return h.digest();
        }
        byte[] out = new byte[32];
        try {
            HASH_CRITICAL.invokeExact(MemorySegment.ofArray(data).asSlice(offset, length), (long) length, MemorySegment.ofArray(out));
        } catch (Throwable t) {
            throw failure(t);
        }
        return B3Digest.wrap(out);
    }

    @Override
    public B3Digest digest(MemorySegment data) {
        long length = data.byteSize();
        if (!data.isNative()) {
            if (length > CRITICAL_PIECE) {
                Hasher h = new Hasher();
                h.update(data, 0, length);
                return h.digest();
            }
            return oneShotCritical(data, length);
        }
        if (length <= CRITICAL_NATIVE_ONE_SHOT) {
            return oneShotCritical(data, length);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(32);
            HASH.invokeExact(data, length, out);
            return B3Digest.wrap(out.toArray(ValueLayout.JAVA_BYTE));
        } catch (Throwable t) {
            throw failure(t);
        }
    }

    private B3Digest oneShotCritical(MemorySegment data, long length) {
        byte[] out = new byte[32];
        try {
            HASH_CRITICAL.invokeExact(data, length, MemorySegment.ofArray(out));
        } catch (Throwable t) {
            throw failure(t);
        }
        return B3Digest.wrap(out);
    }

    @Override
    public Blake3.Hasher newHasher() {
        return new Hasher();
    }

    private static RuntimeException failure(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("native BLAKE3 call failed", t);
    }

    /** The C hasher state (about 1.9 KB) in native memory, allocated once per Hasher and freed by the GC. */
    static final class Hasher implements Blake3.Hasher {
        private final MemorySegment state = Arena.ofAuto().allocate(STATE_SIZE, 64);

        Hasher() {
            reset();
        }

        @Override
        public void reset() {
            try {
                INIT.invokeExact(state);
            } catch (Throwable t) {
                throw failure(t);
            }
        }

        @Override
        public void update(byte[] data, int offset, int length) {
            Objects.checkFromIndexSize(offset, length, data.length);
            updateHeap(MemorySegment.ofArray(data), offset, length);
        }

        @Override
        public void update(ByteBuffer data) {
            int n = data.remaining();
            update(MemorySegment.ofBuffer(data), 0, n);
            data.position(data.position() + n);
        }

        @Override
        public void update(MemorySegment data, long offset, long length) {
            Objects.checkFromIndexSize(offset, length, data.byteSize());
            if (!data.isNative()) {
                updateHeap(data, offset, length);
                return;
            }
            try {
                UPDATE.invokeExact(state, data.asSlice(offset, length), length);
            } catch (Throwable t) {
                throw failure(t);
            }
        }

        private void updateHeap(MemorySegment data, long offset, long length) {
            try {
                while (length > 0) {
                    long n = Math.min(length, CRITICAL_PIECE);
                    UPDATE_CRITICAL.invokeExact(state, data.asSlice(offset, n), n);
                    offset += n;
                    length -= n;
                }
            } catch (Throwable t) {
                throw failure(t);
            }
        }

        @Override
        public B3Digest digest() {
            byte[] out = new byte[32];
            try {
                FINALIZE_CRITICAL.invokeExact(state, MemorySegment.ofArray(out));
            } catch (Throwable t) {
                throw failure(t);
            }
            return B3Digest.wrap(out);
        }
    }
}
