package castore.s3;

import java.util.LinkedHashMap;
import java.util.Map;

/** System properties a test sets or clears, each put back as it was by {@link #close}. */
final class SavedProperties implements AutoCloseable {
    private final Map<String, String> saved = new LinkedHashMap<>();

    /** Sets {@code name} to {@code value}, or clears it if {@code value} is null. */
    SavedProperties set(String name, String value) {
        if (!saved.containsKey(name)) {
            saved.put(name, System.getProperty(name));
        }
        if (value == null) {
            System.clearProperty(name);
        } else {
            System.setProperty(name, value);
        }
        return this;
    }

    @Override
    public void close() {
        saved.forEach((name, value) -> {
            if (value == null) {
                System.clearProperty(name);
            } else {
                System.setProperty(name, value);
            }
        });
        saved.clear();
    }
}
