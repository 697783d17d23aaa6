package castore.s3;

import castore.chunk.FastCdc;
import castore.model.InvalidDataException;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.StoreProvider;
import java.io.IOException;
import java.net.URI;
import java.time.InstantSource;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.retry.RetryMode;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.HeadBucketRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * {@code s3://bucket/prefix?endpoint=URL&region=NAME&profile=NAME}: all three services in one
 * bucket below one prefix. Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials and config, container and instance
 * roles), or the named profile. An endpoint means an S3-compatible server: path-style requests.
 */
public final class S3StoreProvider implements StoreProvider {
    private static final String DEFAULT_REGION_FOR_ENDPOINT = "us-east-1";

    @Override
    public Set<String> schemes() {
        return Set.of("s3");
    }

    @Override
    public Store open(URI address, StoreOptions options) throws IOException {
        S3Location location = S3Location.parse(address);
        AwsCredentialsProvider credentials = credentials(location);
        checkCredentials(credentials, location);
        S3Client client = client(location, options, credentials);
        try {
            checkBucket(client, location);
        } catch (Unreachable e) {
            if (!options.openUnanswered()) {
                client.close();
                throw e;
            }
            // A mount goes on: it says the store does not answer yet, and serves its cache meanwhile.
        } catch (IOException | RuntimeException e) {
            client.close();
            throw e;
        }
        Store store = open(client, location);
        // A mount runs it while idle (castore.fs.WarmUp), so its first reads find the SDK compiled.
        return store.with(store.blobs(), store.directories(), List.of(new S3WarmUp()));
    }

    /** Opens the store with a client the caller built (tests use it for unusual client settings). */
    static Store open(S3Client client, S3Location location) {
        return open(client, location, WriteLease.MONOTONIC);
    }

    /**
     * {@link #open(S3Client, S3Location)} with the lease's intervals on {@code clock} (tests move
     * it past a lease's lapse; gc goes by the server's clock).
     */
    static Store open(S3Client client, S3Location location, InstantSource clock) {
        Bucket bucket = new Bucket(client, location);
        WriteLease lease = new WriteLease(bucket, clock);
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        var blobs = new S3BlobService(bucket, lease, executor, FastCdc.TVIX);
        var directories = new S3DirectoryService(bucket, lease, executor);
        var roots = new S3RootService(bucket, lease);
        var maintenance = new S3Maintenance(bucket, blobs, directories, roots);
        AutoCloseable shared = () -> {
            try (client; lease; executor) {
                // closes the executor (its uploads finish), then the lease (deleting it: an upload
                // still running would take it again, and it would block gc for 15 minutes), then the client
            }
        };
        return new Store(blobs, directories, roots, List.<AutoCloseable>of(roots, directories, blobs, maintenance, shared));
    }

    static S3Client client(S3Location location, StoreOptions options) {
        return client(location, options, credentials(location));
    }

    private static S3Client client(S3Location location, StoreOptions options, AwsCredentialsProvider credentials) {
        var builder = S3Client.builder()
                .httpClientBuilder(UrlConnectionHttpClient.builder()
                        .connectionTimeout(options.timeout())
                        .socketTimeout(options.timeout()))
                .region(region(location))
                .credentialsProvider(credentials);
        configure(builder);
        location.endpoint().ifPresent(endpoint -> builder.endpointOverride(endpoint).forcePathStyle(true));
        return builder.build();
    }

    /** What every client of ours sets, whatever it talks to (S3WarmUp's in-memory S3 too). */
    static void configure(S3ClientBuilder builder) {
        // Our own BLAKE3 checks cover integrity; the SDK's default CRC trailers are not
        // understood by every S3-compatible server.
        builder.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .overrideConfiguration(c -> c.retryStrategy(RetryMode.STANDARD));
    }

    private static Region region(S3Location location) {
        if (location.region().isPresent()) {
            return Region.of(location.region().get());
        }
        // With profile=NAME the region chain reads that profile, not AWS_PROFILE's or the default
        // one: a region set only in [profile NAME] was not found (or another profile's was used).
        var chain = location.profile().map(name -> DefaultAwsRegionProviderChain.builder().profileName(name).build())
                .orElseGet(DefaultAwsRegionProviderChain::new);
        try {
            return chain.getRegion();
        } catch (SdkException none) {
            if (location.endpoint().isPresent()) {
                return Region.of(DEFAULT_REGION_FOR_ENDPOINT);
            }
            throw new InvalidDataException("s3 address " + location.display()
                    + ": no region configured; add ?region=NAME or set AWS_REGION"
                    + location.profile().map(name -> " or a region in profile " + name).orElse(""));
        }
    }

    private static AwsCredentialsProvider credentials(S3Location location) {
        return location.profile().<AwsCredentialsProvider>map(ProfileCredentialsProvider::create)
                .orElseGet(() -> DefaultCredentialsProvider.builder().build());
    }

    /**
     * Resolves the credentials before the first request: a failure there surfaced from that
     * request as "not reachable", with the SDK's list of every provider it tried as the reason.
     */
    private static void checkCredentials(AwsCredentialsProvider credentials, S3Location location) throws IOException {
        try {
            credentials.resolveCredentials();
        } catch (SdkException e) {
            throw new IOException("s3 store " + location.display() + ": no AWS credentials " + location.profile()
                    .map(name -> "in profile '" + name + "' (~/.aws/credentials, ~/.aws/config)")
                    .orElse("found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, "
                            + "an instance or container role, or ?profile=NAME in the address)"), e);
        }
    }

    private static void checkBucket(S3Client client, S3Location location) throws IOException {
        try {
            client.headBucket(HeadBucketRequest.builder().bucket(location.bucket()).build());
        } catch (S3Exception e) {
            // A bucket of another region: a redirect (301, or 400 from some endpoints) naming it.
            Region region = client.serviceClientConfiguration().region();
            Optional<String> actual = e.awsErrorDetails() == null || e.awsErrorDetails().sdkHttpResponse() == null ? Optional.empty()
                    : e.awsErrorDetails().sdkHttpResponse().firstMatchingHeader("x-amz-bucket-region");
            if (actual.isPresent() && !actual.get().equals(region.id())) {
                throw new IOException("s3 bucket '" + location.bucket() + "' is in region " + actual.get() + ", not " + region.id()
                        + ": add ?region=" + actual.get() + " to the address", e);
            }
            if (e.statusCode() == 404) {
                // Named with the endpoint: a web server that is not S3 answers 404 too.
                String endpoint = client.serviceClientConfiguration().endpointOverride().map(Object::toString).orElse("AWS S3");
                throw new InvalidDataException("s3 bucket '" + location.bucket() + "' does not exist at " + endpoint
                        + (location.hasValidBucketName() ? " (create it first, or check that the endpoint is the S3 server)"
                                : ": '" + location.bucket() + "' is not a valid bucket name (3 to 63 lowercase letters, digits, dots "
                                        + "and hyphens, beginning and ending with a letter or digit)"));
            }
            if (e.statusCode() == 403 || e.statusCode() == 401) {
                throw new IOException("s3 bucket '" + location.bucket() + "': access denied (check AWS credentials)", e);
            }
            throw new IOException("s3 bucket '" + location.bucket() + "' not usable: HTTP " + e.statusCode(), e);
        } catch (SdkException e) {
            throw new Unreachable("s3 store " + location.display() + " not reachable: " + e.getMessage(), e);
        }
    }

    /** The server could not be asked at all (no answer, as opposed to an answer that refuses). */
    private static final class Unreachable extends IOException {
        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
