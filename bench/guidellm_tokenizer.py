#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer guidellm can load offline, for bench/llm-stream.sh.

guidellm builds its synthetic prompts with the target model's tokenizer, which it would download
from the Hugging Face Hub. This machine has no Hub, and `simctl serve --llm` has no real model,
so we train a word-level tokenizer on the Faker text guidellm draws its prompts from (one token
per word or punctuation mark, about what a real tokenizer gives English) and save it where
guidellm's `--tokenizer kind=huggingface_auto,model=DIR` loads it. Nothing is fetched.

    guidellm_tokenizer.py DIR
"""

import sys

from faker import Faker
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: guidellm_tokenizer.py DIR")
    fake = Faker()
    fake.seed_instance(1)
    corpus = [fake.text(max_nb_chars=400) for _ in range(5000)]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]"]))
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")
    wrapped.save_pretrained(sys.argv[1])


if __name__ == "__main__":
    main()
