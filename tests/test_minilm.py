"""Chapter 09's pretrained encoder (coursekit.minilm): loaded offline from its package, its sentence vectors are
sentence-transformers' pooling, its word vectors pick the right pieces, and its fine-tuned top layers are the
model's own layers on the output of the layers below."""
import pytest
import torch

from coursekit import minilm

SENTENCES = ["i arrived at the bank after crossing the river .", "a charming and often affecting journey .", "bad"]


@pytest.fixture(scope="module")
def model():
    return minilm.load()


def test_it_loads_from_the_installed_package_without_a_network(model):
    tokenizer, encoder = model
    config = encoder.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (6, 384, 12)
    assert minilm.model_path().is_dir() and (minilm.model_path() / "model.safetensors").is_file()
    assert tokenizer.tokenize("flightless") == ["flight", "##less"]  # BERT's uncased WordPiece


def test_sentence_vectors_are_the_masked_mean_and_the_cls_vector(model):
    tokenizer, encoder = model
    mean, cls = minilm.sentence_vectors(SENTENCES, batch_size=2)
    for i, text in enumerate(SENTENCES):  # one sentence at a time: no padding at all
        with torch.no_grad():
            h = encoder(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
        torch.testing.assert_close(mean[i], h.mean(0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(cls[i], h[0], atol=1e-5, rtol=1e-4)


def test_word_vectors_average_the_pieces_of_each_occurrence(model):
    tokenizer, encoder = model
    text = "penguins are flightless birds ; flightless , they swim"
    vectors = minilm.word_vectors(text, "flightless", layer=3)
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        h = encoder(**batch, output_hidden_states=True).hidden_states[3][0]
    pieces = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    starts = [t for t, p in enumerate(pieces) if p == "flight"]
    assert vectors.shape == (2, 384) and len(starts) == 2
    for row, t in enumerate(starts):
        torch.testing.assert_close(vectors[row], h[t:t + 2].mean(0))
    with pytest.raises(ValueError):
        minilm.word_vectors(text, "bank")


def test_attentions_are_distributions_over_the_pieces(model):
    pieces, weights = minilm.attentions("i arrived at the bank")
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and weights.shape == (6, 12, len(pieces), len(pieces))
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 12, len(pieces)))


def test_top_layers_on_the_frozen_states_are_the_whole_model(model):
    """The last two layers, run on the cached output of the first four, with padding, give the model's own
    sentence vectors: the cache changes nothing but the cost."""
    _, encoder = model
    top = minilm.TopLayers(encoder.encoder.layer[4:]).eval()
    top.out = torch.nn.Identity()
    h, keep = minilm._pad(minilm.frozen_states(SENTENCES, 4))
    assert keep.sum(1).tolist() == [len(s) for s in minilm.frozen_states(SENTENCES, 4)]
    with torch.no_grad():
        torch.testing.assert_close(top(h, keep), minilm.sentence_vectors(SENTENCES)[0], atol=1e-5, rtol=1e-4)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(top.parameters(), encoder.parameters())), \
        "fine-tuning trains a copy, never the shared pretrained model"


def test_the_shipped_fine_tuned_layers_give_their_recorded_predictions(model):
    """The checkpoint is what scored the shipped test accuracy: it gives the recorded predictions again (on the
    first 160 test sentences, a quarter of a second each way), and its accuracy is the recorded one."""
    from coursekit import polarity

    row = polarity.read_results()["minilm-finetuned"]
    texts, labels = polarity.split("test")
    probabilities = minilm.classify(texts[:160])
    assert ((probabilities > 0.5).long().tolist()) == row["test_predictions"][:160]
    assert polarity.accuracy_interval(row["test_predictions"], labels)[0] == pytest.approx(row["test_accuracy"], abs=1e-3)
    top, ckpt = minilm.load_finetuned()
    assert ckpt["config"]["top_layers"] == len(top.layers) == minilm.TOP_LAYERS
    assert max(ckpt["history"]["val_accuracy"]) == pytest.approx(row["val_accuracy"], abs=1e-3)
