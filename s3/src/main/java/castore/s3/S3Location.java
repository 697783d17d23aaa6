package castore.s3;

import castore.model.InvalidDataException;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A parsed {@code s3://bucket/prefix?endpoint=URL&region=NAME&profile=NAME} address. The prefix
 * is normalised to either empty or ending in '/', so keys are {@code prefix + "chunks/..."}.
 */
public record S3Location(String bucket, String prefix, Optional<URI> endpoint, Optional<String> region,
        Optional<String> profile) {
    private static final Set<String> PARAMETERS = Set.of("endpoint", "region", "profile");

    public static S3Location parse(URI address) {
        if (!"s3".equals(address.getScheme())) {
            throw new InvalidDataException("not an s3:// address: " + address);
        }
        String bucket = address.getHost() != null ? address.getHost() : address.getRawAuthority();
        if (bucket == null || bucket.isEmpty()) {
            throw new InvalidDataException("s3 address '" + address + "' has no bucket (expected s3://bucket/prefix)");
        }
        String path = address.getPath() == null ? "" : address.getPath();
        String prefix = path.replaceAll("^/+", "").replaceAll("/+$", "");
        if (prefix.contains("//")) {
            throw new InvalidDataException("s3 address '" + address + "': empty path segment in prefix");
        }
        Map<String, String> query = query(address);
        for (String key : query.keySet()) {
            if (!PARAMETERS.contains(key)) {
                throw new InvalidDataException("s3 address '" + address + "': unknown parameter '" + key + "' (known: " + PARAMETERS + ")");
            }
        }
        Optional<URI> endpoint = Optional.ofNullable(query.get("endpoint")).map(e -> {
            URI uri;
            try {
                uri = URI.create(e);
            } catch (IllegalArgumentException bad) {
                throw new InvalidDataException("s3 address '" + address + "': invalid endpoint '" + e + "'");
            }
            if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
                throw new InvalidDataException("s3 address '" + address + "': endpoint must be http(s)://host[:port], got '" + e + "'");
            }
            return uri;
        });
        return new S3Location(bucket, prefix.isEmpty() ? "" : prefix + "/", endpoint,
                Optional.ofNullable(query.get("region")), Optional.ofNullable(query.get("profile")));
    }

    private static Map<String, String> query(URI address) {
        Map<String, String> out = new LinkedHashMap<>();
        String raw = address.getRawQuery();
        if (raw == null || raw.isEmpty()) {
            return out;
        }
        for (String pair : raw.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw new InvalidDataException("s3 address '" + address + "': parameter '" + pair + "' is not name=value");
            }
            out.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                    URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return out;
    }

    private static final java.util.regex.Pattern BUCKET_NAME = java.util.regex.Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");

    /**
     * Whether the bucket's name is one S3 gives out today: 3 to 63 lowercase letters, digits,
     * dots and hyphens, beginning and ending with a letter or a digit. Not a reason to refuse the
     * address (old us-east-1 buckets and some servers have other names), but servers that keep
     * to the rules answer "no such bucket" to any other, and the error then says why.
     */
    public boolean hasValidBucketName() {
        return BUCKET_NAME.matcher(bucket).matches() && !bucket.contains("..");
    }

    /** For messages: bucket and prefix, without parameters. */
    public String display() {
        return "s3://" + bucket + "/" + prefix;
    }
}
