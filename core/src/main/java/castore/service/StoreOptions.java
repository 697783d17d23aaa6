package castore.service;

import java.time.Duration;
import java.util.Map;

/**
 * Settings that apply to any backend. {@code extra} carries provider-specific settings given on
 * the command line (e.g. a cache directory) keyed by option name. {@code createIfMissing} lets a
 * backend that keeps its data in a directory (the local store) create an absent store; commands
 * that only read turn it off, so a mistyped path is an error instead of a new empty store.
 */
public record StoreOptions(boolean readOnly, Duration timeout, Map<String, String> extra, boolean createIfMissing) {
    public static final StoreOptions DEFAULT = new StoreOptions(false, Duration.ofSeconds(5), Map.of(), true);

    /** Options that create a missing store. */
    public StoreOptions(boolean readOnly, Duration timeout, Map<String, String> extra) {
        this(readOnly, timeout, extra, true);
    }

    public StoreOptions withReadOnly(boolean readOnly) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing);
    }

    public StoreOptions withCreateIfMissing(boolean createIfMissing) {
        return new StoreOptions(readOnly, timeout, extra, createIfMissing);
    }
}
