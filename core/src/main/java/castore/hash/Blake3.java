package castore.hash;

import castore.model.B3Digest;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.Optional;

/**
 * BLAKE3 (unkeyed hash mode, 32-byte output), the digest of every blob, chunk and Directory.
 *
 * <p>Two engines compute it: the official C implementation with SIMD through FFM
 * ({@link Implementation#NATIVE}, used when its library loads and passes a self-test) and a
 * portable Java one ({@link Implementation#JAVA}, the verified fallback). They agree bit for
 * bit. {@code CASTORE_BLAKE3} (or the system property {@code castore.blake3}) chooses:
 * {@code auto} (default), {@code java}, or {@code native} (an error if unavailable).
 */
public final class Blake3 {
    public enum Implementation { NATIVE, JAVA }

    /** One way of computing BLAKE3. Thread-safe; the hashers it creates are not. */
    public sealed interface Engine permits JavaBlake3, NativeBlake3 {
        Implementation implementation();

        B3Digest digest(byte[] data, int offset, int length);

        /** The digest of all bytes of {@code data} (heap or native memory, e.g. a mapped file). */
        B3Digest digest(MemorySegment data);

        Hasher newHasher();
    }

    /** An incremental BLAKE3 hasher. Not thread-safe. */
    public interface Hasher {
        void update(byte[] data, int offset, int length);

        default void update(byte[] data) {
            update(data, 0, data.length);
        }

        /** Consumes the buffer's remaining bytes. */
        void update(ByteBuffer data);

        /** Hashes {@code length} bytes of {@code data} from {@code offset}, e.g. of a mapped file. */
        void update(MemorySegment data, long offset, long length);

        default void update(MemorySegment data) {
            update(data, 0, data.byteSize());
        }

        /** The digest of everything so far; the hasher may be updated further. */
        B3Digest digest();

        /** Forgets all input, for reuse. */
        void reset();
    }

    private Blake3() {
    }

    public static B3Digest digest(byte[] data) {
        return engine().digest(data, 0, data.length);
    }

    public static B3Digest digest(byte[] data, int offset, int length) {
        return engine().digest(data, offset, length);
    }

    /** The digest of the buffer's remaining bytes, which it consumes. */
    public static B3Digest digest(ByteBuffer data) {
        B3Digest d = data.hasArray()
                ? engine().digest(data.array(), data.arrayOffset() + data.position(), data.remaining())
                : engine().digest(MemorySegment.ofBuffer(data));
        data.position(data.limit());
        return d;
    }

    public static B3Digest digest(MemorySegment data) {
        return engine().digest(data);
    }

    public static B3Digest digest(MemorySegment data, long offset, long length) {
        return engine().digest(data.asSlice(offset, length));
    }

    public static Hasher newHasher() {
        return engine().newHasher();
    }

    /** The engine in use: native when available, unless {@code CASTORE_BLAKE3} says otherwise. */
    public static Engine engine() {
        Choice c = Choice.DEFAULT;
        if (c.engine == null) {
            throw new IllegalStateException(c.problem);
        }
        return c.engine;
    }

    /** A specific engine, if it is available here (for tests and benchmarks). */
    public static Optional<Engine> engine(Implementation implementation) {
        return switch (implementation) {
            case JAVA -> Optional.of(JavaBlake3.INSTANCE);
            case NATIVE -> Optional.ofNullable(NativeHolder.LOADED.engine());
        };
    }

    public static Implementation implementation() {
        return engine().implementation();
    }

    /** One line for logs and {@code --version}: which engine, and why not native if not. */
    public static String description() {
        Choice c = Choice.DEFAULT;
        if (c.engine == null) {
            return "unusable: " + c.problem;
        }
        if (c.engine instanceof NativeBlake3 n) {
            return "native (" + n.describe() + ")";
        }
        return c.forced ? "java (chosen by " + Choice.SETTING + ")" : "java (" + NativeHolder.LOADED.problem() + ")";
    }

    /** Why the native engine is unavailable, or null if it is available. */
    static String nativeProblem() {
        return NativeHolder.LOADED.problem();
    }

    /** Loads the native library on first need only. */
    private static final class NativeHolder {
        static final NativeBlake3.Loaded LOADED = NativeBlake3.load();
    }

    /** The engine chosen once per JVM, or why there is none. */
    private record Choice(Engine engine, String problem, boolean forced) {
        static final String SETTING = "CASTORE_BLAKE3";
        static final Choice DEFAULT = choose();

        private static Choice choose() {
            String wanted = System.getProperty("castore.blake3", System.getenv(SETTING));
            wanted = wanted == null ? "auto" : wanted.trim().toLowerCase(Locale.ROOT);
            NativeBlake3.Loaded loaded;
            return switch (wanted) {
                case "java" -> new Choice(JavaBlake3.INSTANCE, null, true);
                case "native" -> (loaded = NativeHolder.LOADED).engine() != null
                        ? new Choice(loaded.engine(), null, true)
                        : new Choice(null, SETTING + "=native but " + loaded.problem(), true);
                case "auto", "" -> (loaded = NativeHolder.LOADED).engine() != null
                        ? new Choice(loaded.engine(), null, false)
                        : new Choice(JavaBlake3.INSTANCE, null, false);
                default -> new Choice(null, SETTING + " must be auto, java or native, not '" + wanted + "'", true);
            };
        }
    }
}
