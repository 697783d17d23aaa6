package castore.service;

import java.time.Duration;
import java.util.Map;

/**
 * Settings that apply to any backend. {@code extra} carries provider-specific settings given on
 * the command line (e.g. a cache directory) keyed by option name. {@code createIfMissing} lets a
 * backend that keeps its data in a directory (the local store) create an absent store; commands
 * that only read turn it off, so a mistyped path is an error instead of a new empty store.
 * {@code directReads} says that the caller keeps the data it reads in a cache of its own (a
 * mount: the kernel's page cache of the FUSE files), so stores read large blobs sequentially
 * past the page cache (O_DIRECT) where they can, instead of caching the same bytes twice.
 * {@code openUnanswered} says that the caller goes on with a store whose server does not answer
 * yet (a mount: it says so, fails reads with EIO until it answers, and serves what its cache
 * holds meanwhile), so a backend that asks its server at open (S3's bucket check) does not fail
 * the open when the server cannot be reached, only when it answers no.
 */
public record StoreOptions(boolean readOnly, Duration timeout, Map<String, String> extra, boolean createIfMissing,
        boolean directReads, boolean openUnanswered) {
    public static final StoreOptions DEFAULT = new StoreOptions(false, Duration.ofSeconds(5), Map.of(), true, false, false);

    /** Options that create a missing store. */
    public StoreOptions(boolean readOnly, Duration timeout, Map<String, String> extra) {
        this(readOnly, timeout, extra, true, false, false);
    }

    public StoreOptions withReadOnly(boolean readOnly) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing, directReads, openUnanswered);
    }

    public StoreOptions withCreateIfMissing(boolean createIfMissing) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing, directReads, openUnanswered);
    }

    public StoreOptions withDirectReads(boolean directReads) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing, directReads, openUnanswered);
    }

    /** The longest a remote store's server may keep a caller waiting before the operation fails. */
    public StoreOptions withTimeout(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
        return new StoreOptions(readOnly, timeout, extra, createIfMissing, directReads, openUnanswered);
    }

    public StoreOptions withOpenUnanswered(boolean openUnanswered) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing, directReads, openUnanswered);
    }
}
